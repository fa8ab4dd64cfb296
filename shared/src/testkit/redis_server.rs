//! A private redis-server for one test run.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A redis-server this test started, on its own port and directory; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Child,
    dir: PathBuf,
    aof: bool,
    /// The cluster bus port of a cluster node (chosen like the client port: Redis's default,
    /// port + 10,000, may be taken or above 65,535).
    cluster_bus: Option<u16>,
}

impl RedisServer {
    /// Starts redis-server on a free port. Panics loudly if redis-server is not installed:
    /// a missing dependency is a failure, never a skip.
    pub fn start() -> RedisServer {
        Self::start_on(super::free_port(), false)
    }

    /// Starts on `port`; with `aof`, every write is fsynced to an append-only file, so a
    /// [`RedisServer::restart`] loses nothing.
    pub fn start_on(port: u16, aof: bool) -> RedisServer {
        Self::launch(port, aof, None)
    }

    /// A node for a test cluster (`--cluster-enabled yes`, its nodes.conf in its directory).
    pub(super) fn start_cluster_node(port: u16, aof: bool) -> RedisServer {
        Self::launch(port, aof, Some(super::free_port()))
    }

    fn launch(port: u16, aof: bool, cluster_bus: Option<u16>) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("sluice-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = spawn(port, &dir, aof, cluster_bus);
        let server = RedisServer { port, child, dir, aof, cluster_bus };
        server.wait_ready();
        server
    }

    /// kill -9, leaving the port closed until [`RedisServer::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// kill -9, then start again on the same port from the same directory.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, &self.dir, self.aof, self.cluster_bus);
        self.wait_ready();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING within 10 s", self.port);
    }

    /// A plain synchronous connection, for assertions.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }
}

fn spawn(port: u16, dir: &std::path::Path, aof: bool, cluster_bus: Option<u16>) -> Child {
    let persistence: &[&str] =
        if aof { &["--appendonly", "yes", "--appendfsync", "always"] } else { &["--appendonly", "no"] };
    // Node timeout 2 s: a restarted node is trusted again quickly.
    let cluster_args: Vec<String> = match cluster_bus {
        Some(bus) => ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--cluster-port", &bus.to_string()]
            .map(String::from)
            .to_vec(),
        None => Vec::new(),
    };
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(persistence)
        .args(&cluster_args)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); scripts/test.sh installs it (apt-get install redis-server)")
        })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
