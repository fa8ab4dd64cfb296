//! A private Sentinel deployment for one test run: one master, one replica and three
//! sentinels (quorum 2) on free ports, the master declared down after 1 s. Killed on drop.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{RedisServer, free_port};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "sluice";

pub struct RedisSentinel {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<Sentinel>,
}

/// One `redis-server --sentinel`, its config file in a directory of its own (Sentinel
/// rewrites it as it learns the deployment).
pub struct Sentinel {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl RedisSentinel {
    pub fn start(aof: bool) -> RedisSentinel {
        let master = RedisServer::start_on(free_port(), aof);
        let replica = RedisServer::start_replica(master.port, aof);
        let sentinels = (0..3).map(|_| Sentinel::start(master.port)).collect();
        let deployment = RedisSentinel { master, replica, sentinels };
        deployment.wait_whole();
        deployment
    }

    /// Waits until the replica is in sync and every sentinel knows the replica and the two
    /// other sentinels: only then can they agree on a failover.
    fn wait_whole(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let synced = redis::cmd("INFO")
                .arg("replication")
                .query::<String>(&mut self.replica.conn())
                .is_ok_and(|info| info.contains("master_link_status:up"));
            let known = self.sentinels.iter().all(|s| {
                let count = |what: &str| {
                    redis::cmd("SENTINEL")
                        .arg(what)
                        .arg(MASTER_NAME)
                        .query::<Vec<redis::Value>>(&mut s.conn())
                        .map_or(0, |v| v.len())
                };
                count("replicas") == 1 && count("sentinels") == 2
            });
            if synced && known {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the test Sentinel deployment did not come together within 30 s");
    }

    /// The port of the server the sentinels name master now.
    pub fn master_port(&self) -> Option<u16> {
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME)
            .query(&mut self.sentinels[0].conn())
            .ok()?;
        addr.get(1)?.parse().ok()
    }

    /// The `[redis]` section's body for a Sluice config.
    pub fn config_body(&self) -> String {
        let urls: Vec<String> = self.sentinels.iter().map(|s| format!("\"redis://127.0.0.1:{}\"", s.port)).collect();
        format!("sentinels = [{}]\nmaster_name = \"{MASTER_NAME}\"", urls.join(", "))
    }

    /// kill -9 the master and its replica: the whole deployment is down.
    pub fn stop(&mut self) {
        self.master.stop();
        self.replica.stop();
    }

    /// kill -9 both and start them again from their directories, the master first.
    pub fn restart(&mut self) {
        self.stop();
        self.master.restart();
        self.replica.restart();
    }
}

impl Sentinel {
    fn start(master_port: u16) -> Sentinel {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sluice-sentinel-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server --sentinel ({e}); scripts/test.sh installs redis-server")
            });
        let sentinel = Sentinel { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while sentinel.try_conn().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c)).is_err() {
            assert!(Instant::now() < deadline, "the sentinel on port {port} did not answer PING within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        sentinel
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?.get_connection()
    }

    /// A synchronous connection to this sentinel (SENTINEL commands).
    pub fn conn(&self) -> redis::Connection {
        self.try_conn().unwrap()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
