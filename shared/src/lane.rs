//! Two lanes per destination. Campaign jobs go to the bulk lane; transactional messages
//! (ids starting `msg_`) go to the priority lane, which workers claim on their own loop, with
//! their own in-flight bound and connections, so a bulk backlog never stands in front of them.
//! Both lanes draw on the destination's one token bucket (see `take.lua` for the shares).

/// Every transactional message id starts with this; campaign ids may not.
pub const MESSAGE_PREFIX: &str = "msg_";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    #[default]
    Bulk,
    Priority,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Bulk, Lane::Priority];

    /// The lane of every job of campaign (or message) `id`.
    pub fn of(id: &str) -> Lane {
        if is_message(id) { Lane::Priority } else { Lane::Bulk }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Bulk => "bulk",
            Lane::Priority => "priority",
        }
    }
}

/// Whether `id` names a transactional message rather than a campaign.
pub fn is_message(id: &str) -> bool {
    id.starts_with(MESSAGE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_take_the_priority_lane() {
        assert_eq!(Lane::of("msg_0192"), Lane::Priority);
        assert_eq!(Lane::of("spring-sale"), Lane::Bulk);
        assert_eq!(Lane::of("msgx"), Lane::Bulk);
    }
}
