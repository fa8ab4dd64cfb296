//! A private three-master Redis Cluster for one test run, and the switch that lets the same
//! integration tests run on one redis-server, on a cluster (`SLUICE_TEST_REDIS=cluster`) or
//! on a master with a replica behind three sentinels (`SLUICE_TEST_REDIS=sentinel`).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use redis::{Cmd, ConnectionLike, RedisResult, Value};

use super::{RedisSentinel, RedisServer, free_port};

/// Three redis-servers with `--cluster-enabled yes`, joined by `redis-cli --cluster create`
/// (no replicas: 5,461 slots or so each). Killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(aof: bool) -> RedisCluster {
        Self::join((0..3).map(|_| RedisServer::start_cluster_node(free_port(), aof)).collect())
    }

    /// A cluster whose nodes also speak TLS to clients and to each other (certificates from
    /// `ca`). The plain ports stay for the test's own assertions: Redis tells each client the
    /// ports of its own kind, so a `rediss://` client is sent only to TLS ports.
    pub fn start_tls(ca: &super::test_ca::TestCa, client_certs: bool) -> RedisCluster {
        Self::join((0..3).map(|_| RedisServer::start_tls_cluster_node(ca, client_certs)).collect())
    }

    fn join(nodes: Vec<RedisServer>) -> RedisCluster {
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); scripts/test.sh installs redis-tools"));
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        cluster
    }

    /// Waits until every node reports the whole cluster: state ok, every slot served, every
    /// node known (a client that asks a node still learning the others gets a partial map).
    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let whole =
            ["cluster_state:ok", "cluster_slots_ok:16384", &format!("cluster_known_nodes:{}", self.nodes.len())];
        while Instant::now() < deadline {
            let ok = self.nodes.iter().all(|n| {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut n.conn())
                    .is_ok_and(|info| whole.iter().all(|line| info.lines().any(|l| l.trim() == *line)))
            });
            if ok && self.client().get_connection().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the test cluster did not reach cluster_state:ok within 20 s");
    }

    fn client(&self) -> redis::cluster::ClusterClient {
        redis::cluster::ClusterClient::new(self.nodes.iter().map(|n| n.url()).collect::<Vec<_>>()).unwrap()
    }

    /// kill -9 every node, start each again from its own directory (nodes.conf and, with AOF,
    /// the data), and wait for the cluster to be whole again.
    pub fn restart(&mut self) {
        for node in &mut self.nodes {
            node.restart();
        }
        self.wait_ok();
    }
}

/// The Redis a test stack runs on: one server, or what `SLUICE_TEST_REDIS` names.
pub enum TestRedis {
    Single(RedisServer),
    Sentinel(Box<RedisSentinel>),
    Cluster(RedisCluster),
}

impl From<RedisServer> for TestRedis {
    fn from(server: RedisServer) -> Self {
        TestRedis::Single(server)
    }
}

impl TestRedis {
    /// One redis-server, or a three-master cluster or a Sentinel deployment when the
    /// environment asks for it.
    pub fn start() -> TestRedis {
        Self::start_with_aof(false)
    }

    pub fn start_with_aof(aof: bool) -> TestRedis {
        match std::env::var("SLUICE_TEST_REDIS").as_deref() {
            Ok("cluster") => TestRedis::Cluster(RedisCluster::start(aof)),
            Ok("sentinel") => TestRedis::Sentinel(Box::new(RedisSentinel::start(aof))),
            Ok("single") | Err(_) => TestRedis::Single(RedisServer::start_on(free_port(), aof)),
            Ok(other) => panic!("SLUICE_TEST_REDIS={other:?}: expected \"single\", \"sentinel\" or \"cluster\""),
        }
    }

    /// The port of the server, of the Sentinel deployment's first master, or of the
    /// cluster's first node.
    pub fn port(&self) -> u16 {
        match self {
            TestRedis::Single(s) => s.port,
            TestRedis::Sentinel(s) => s.master.port,
            TestRedis::Cluster(c) => c.nodes[0].port,
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, TestRedis::Cluster(_))
    }

    /// The `[redis]` section's body for a Sluice config.
    pub fn config_body(&self) -> String {
        match self {
            TestRedis::Single(s) => s.config_body(),
            TestRedis::Sentinel(s) => s.config_body(),
            TestRedis::Cluster(c) => {
                let url = |n: &RedisServer| n.tls.as_ref().map_or_else(|| n.url(), |t| t.url());
                let seeds: Vec<String> = c.nodes.iter().map(|n| format!("\"{}\"", url(n))).collect();
                let files = c.nodes[0].tls.as_ref().map(|t| t.files_toml()).unwrap_or_default();
                format!("mode = \"cluster\"\nseeds = [{}]\n{files}", seeds.join(", "))
            }
        }
    }

    /// A synchronous connection for assertions; on a cluster it routes each command by key.
    pub fn conn(&self) -> TestConn {
        match self {
            TestRedis::Single(s) => TestConn::Single(s.conn()),
            TestRedis::Sentinel(s) => TestConn::Single(s.master.conn()),
            TestRedis::Cluster(c) => TestConn::Cluster(Box::new(c.client().get_connection().unwrap())),
        }
    }

    /// kill -9 the server, the Sentinel deployment's master and replica, or one master of a
    /// cluster: the cluster is then down too (its slots are not all served), while the other
    /// nodes still answer, with CLUSTERDOWN.
    pub fn stop(&mut self) {
        match self {
            TestRedis::Single(s) => s.stop(),
            TestRedis::Sentinel(s) => s.stop(),
            TestRedis::Cluster(c) => c.nodes[0].stop(),
        }
    }

    /// kill -9 and start again (every node of a cluster) from the same directories.
    pub fn restart(&mut self) {
        match self {
            TestRedis::Single(s) => s.restart(),
            TestRedis::Sentinel(s) => s.restart(),
            TestRedis::Cluster(c) => c.restart(),
        }
    }

    /// Sync connections to every master: for commands that act per node (KEYS, INFO, CLIENT).
    pub fn each_node(&self) -> Vec<redis::Connection> {
        match self {
            TestRedis::Single(s) => vec![s.conn()],
            TestRedis::Sentinel(s) => vec![s.master.conn()],
            TestRedis::Cluster(c) => c.nodes.iter().map(|n| n.conn()).collect(),
        }
    }
}

/// A test's synchronous connection to one server or to the cluster.
pub enum TestConn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl TestConn {
    fn inner(&mut self) -> &mut dyn ConnectionLike {
        match self {
            TestConn::Single(c) => c,
            TestConn::Cluster(c) => c.as_mut(),
        }
    }
}

impl ConnectionLike for TestConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.inner().req_packed_command(cmd)
    }

    fn req_packed_commands(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        self.inner().req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.inner().req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn supports_pipelining(&self) -> bool {
        matches!(self, TestConn::Single(_))
    }

    fn check_connection(&mut self) -> bool {
        self.inner().check_connection()
    }

    fn is_open(&self) -> bool {
        match self {
            TestConn::Single(c) => c.is_open(),
            TestConn::Cluster(c) => c.is_open(),
        }
    }
}
