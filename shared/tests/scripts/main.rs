//! Every typed script function against a real redis-server: each writes and reads the keys it
//! should, so a key passed in the wrong place shows up as a wrong count, state or member.

mod campaign;
mod destination;
mod engagement;
mod jobs;
mod plumbing;
mod replicas;

use std::collections::BTreeMap;

use sluice_shared::{keys, redis::Conn};
use sluice_testkit::RedisServer;

/// A private redis-server and an async connection to it.
pub struct Redis {
    pub server: RedisServer,
    pub conn: Conn,
}

impl Redis {
    pub async fn start() -> Redis {
        let server = RedisServer::start();
        let conn = Conn::connect(&server.url()).await.expect("connect to the test redis-server");
        Redis { server, conn }
    }

    /// A plain command, for setting up and checking what the scripts did.
    pub async fn cmd<T: redis::FromRedisValue>(&mut self, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut self.conn).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    pub async fn counts(&mut self, id: &str) -> BTreeMap<String, i64> {
        self.cmd(&["HGETALL", &keys::campaign_counts(id)]).await
    }

    pub async fn state(&mut self, id: &str, index: u64) -> Option<String> {
        self.cmd(&["HGET", &keys::campaign_state(id), &index.to_string()]).await
    }

    pub async fn event_types(&mut self, id: &str) -> Vec<String> {
        let entries: Vec<(String, Vec<(String, String)>)> =
            self.cmd(&["XRANGE", &keys::campaign_events(id), "-", "+"]).await;
        entries.into_iter().filter_map(|(_, f)| f.into_iter().find(|(k, _)| k == "type").map(|(_, v)| v)).collect()
    }

    /// A campaign in `status` with `queued` jobs out, as after an expansion.
    pub async fn campaign(&mut self, id: &str, status: &str, queued: i64) {
        let meta = keys::campaign_meta(id);
        let _: () = self.cmd(&["HSET", &meta, "status", status, "cursor", "0", "spec", "{}"]).await;
        let counts = keys::campaign_counts(id);
        let total = queued.to_string();
        let _: () = self.cmd(&["HSET", &counts, "total", &total, "queued", &total]).await;
    }
}
