//! The unsubscribed hash's entries, edited in place (an address may be unsubscribed from
//! several lists), and the one-time move of old unsubscribe entries out of the suppression list.

use super::lua;
use crate::{
    keys,
    redis::{Conn, StoreResult},
};

lua!(UNSUBSCRIBE, "unsubscribe", Clock, &["unsubscribed"]);
lua!(MIGRATE, "suppression_migrate", Clock, &["suppressed", "unsubscribed"]);

/// One unsubscribe: a lower-case address, from every campaign (`list` None) or one list.
pub struct Unsubscribe<'a> {
    pub address: &'a str,
    pub list: Option<&'a str>,
    /// The entry's JSON (ignored when taking an unsubscribe back).
    pub entry_json: &'a str,
}

/// Records every unsubscribe in one step; how many were new.
pub async fn unsubscribe(conn: &mut Conn, each: &[Unsubscribe<'_>]) -> StoreResult<u64> {
    edit(conn, "add", each).await
}

/// Takes unsubscribes back (`list` None: from every campaign and every list); how many there were.
pub async fn resubscribe(conn: &mut Conn, each: &[Unsubscribe<'_>]) -> StoreResult<u64> {
    edit(conn, "remove", each).await
}

async fn edit(conn: &mut Conn, op: &str, each: &[Unsubscribe<'_>]) -> StoreResult<u64> {
    if each.is_empty() {
        return Ok(0);
    }
    let mut invocation = UNSUBSCRIBE.on(&keys::unsubscribed());
    invocation.arg(op);
    for u in each {
        invocation.arg(u.address).arg(u.list.unwrap_or("")).arg(u.entry_json);
    }
    Ok(invocation.invoke_async(conn).await?)
}

/// Moves the suppression entry `entry_json` of `address`, made by an unsubscribe, to the
/// unsubscribed hash, unless it changed since it was read; whether it moved.
pub async fn migrate(conn: &mut Conn, address: &str, entry_json: &str) -> StoreResult<bool> {
    let mut invocation = MIGRATE.invocation(|name| match name {
        "suppressed" => keys::suppressed(),
        "unsubscribed" => keys::unsubscribed(),
        other => unreachable!("suppression_migrate takes no {other}"),
    });
    invocation.arg(address).arg(entry_json);
    let moved: i64 = invocation.invoke_async(conn).await?;
    Ok(moved == 1)
}
