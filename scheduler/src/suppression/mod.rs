//! The suppression lists from the scheduler's side: which recipients expansion skips, the
//! one-time move of old unsubscribe entries ([`migrate`]), and bulk import and export.

pub mod export;
pub mod import;
pub mod migrate;

use sluice_shared::{keys, model::Expansion, redis::Conn, suppression};

/// Which of `addresses` (lower-case) may not be sent: everything suppressed in scope `all`,
/// and, for a campaign (`message` false), every unsubscribe that applies to its list. An
/// erased address is looked up by its token as well.
pub async fn blocked(
    conn: &mut Conn,
    addresses: &[String],
    message: bool,
    expansion: &Expansion,
) -> redis::RedisResult<Vec<bool>> {
    let mut names: Vec<String> = addresses.to_vec();
    names.extend(addresses.iter().map(|a| suppression::erased_token(a)));
    let mut pipe = redis::pipe();
    pipe.cmd("HMGET").arg(keys::suppressed()).arg(&names);
    if !message {
        pipe.cmd("HMGET").arg(keys::unsubscribed()).arg(&names);
    }
    let replies: Vec<Vec<Option<String>>> = pipe.query_async(conn).await?;
    let n = addresses.len();
    let list = expansion.list.as_deref();
    let mut out = vec![false; n];
    for (k, blocked) in out.iter_mut().enumerate() {
        let all = &replies[0];
        let unsubscribed = |i: usize| {
            replies.get(1).and_then(|r| r[i].as_deref()).is_some_and(|e| suppression::unsubscribe_applies(e, list))
        };
        *blocked = all[k].is_some() || all[n + k].is_some() || unsubscribed(k) || unsubscribed(n + k);
    }
    Ok(out)
}
