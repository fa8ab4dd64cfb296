//! Asking the schedulers to look after a campaign or a message: campaigns join the active set,
//! messages the due index (a message has no staged list, so it is visited when due or nudged).

use crate::{
    keys,
    lane::is_message,
    redis::{Conn, StoreResult},
};

/// Asks the schedulers to look after `id` (expansion, retries, completion): campaigns join the
/// active set, messages the due index, due now.
pub async fn look_after(conn: &mut Conn, id: &str) -> StoreResult<()> {
    if is_message(id) {
        redis::cmd("ZADD").arg(keys::messages_due()).arg(now_ms()).arg(id).query_async::<()>(conn).await?;
    } else {
        redis::cmd("SADD").arg(keys::active_campaigns()).arg(id).query_async::<()>(conn).await?;
    }
    Ok(())
}

/// Tells the schedulers a message has news (an outcome recorded): visit it by now at the latest.
pub async fn nudge_message(conn: &mut Conn, id: &str) -> StoreResult<()> {
    redis::cmd("ZADD").arg(keys::messages_due()).arg("LT").arg(now_ms()).arg(id).query_async::<()>(conn).await?;
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
