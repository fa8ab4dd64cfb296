//! The event feed's one rule for writers: before writing events to a campaign's (or
//! message's) own stream, bump its version in `sluice:events:pending`. The schedulers copy
//! every pending source's new events into the feed and drop a source only if its version did
//! not change meanwhile, so no event is ever left out of the feed (a crash in between only
//! means a copy is made twice; events carry stable ids).

use crate::{
    keys,
    redis::{Conn, StoreResult},
};

/// Marks `source` as having (or about to have) events not yet in the feed.
pub async fn mark(conn: &mut Conn, source: &str) -> StoreResult<()> {
    redis::cmd("ZINCRBY").arg(keys::feed_pending()).arg(1).arg(source).query_async::<()>(conn).await?;
    Ok(())
}
