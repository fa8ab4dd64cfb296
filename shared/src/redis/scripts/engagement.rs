//! The engagement records (`crate::engagement`): counting a chunk's sends and finding its
//! dormant addresses, one script per group; a real open or a click.

use super::lua;
use crate::{
    engagement, keys,
    redis::{Conn, StoreResult},
};

lua!(EXPAND, "engagement_expand", Clock, &["buckets"]);
lua!(TOUCH, "engagement_touch", Clock, &["bucket"]);

/// The sunset policy as the script takes it (0: off).
pub struct Sunset {
    pub after_sends: u32,
    pub after_days: u32,
    pub include_dormant: bool,
}

/// For each of `addresses` (lower-case, all of one group), whether it is dormant (skipped,
/// its record unchanged); every other one counts a send `today`.
pub async fn expand(conn: &mut Conn, today: u16, sunset: &Sunset, addresses: &[&str]) -> StoreResult<Vec<bool>> {
    let mut invocation = EXPAND.script.prepare_invoke();
    for a in addresses {
        invocation.key(keys::engagement_bucket(engagement::bucket(a)));
    }
    invocation.arg(today).arg(sunset.after_sends).arg(sunset.after_days).arg(if sunset.include_dormant {
        "1"
    } else {
        "0"
    });
    for a in addresses {
        invocation.arg(*a);
    }
    let flags: Vec<i64> = invocation.invoke_async(conn).await?;
    Ok(flags.into_iter().map(|f| f == 1).collect())
}

/// Records a real open (`click` false) or a click of `address` (lower-case) `today`.
pub async fn touch(conn: &mut Conn, address: &str, click: bool, today: u16) -> StoreResult<()> {
    let key = keys::engagement_bucket(engagement::bucket(address));
    TOUCH.on(&key).arg(if click { "click" } else { "open" }).arg(today).arg(address).invoke_async::<i64>(conn).await?;
    Ok(())
}
