//! A private redis-server for one test run.

use super::test_ca::{Issued, TestCa};
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
    /// Extra redis-server arguments (TLS), kept for restarts.
    extra: Vec<String>,
    /// A TLS port beside the plain one (which stays for the test's own assertions).
    pub tls: Option<TlsEndpoint>,
}

/// How Sluice reaches a TLS redis-server: the port, the CA that signed the server's
/// certificate, and the client certificate when the server requires one.
pub struct TlsEndpoint {
    pub port: u16,
    pub ca_file: PathBuf,
    pub client: Option<Issued>,
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
        Self::launch(port, aof, None, Vec::new())
    }

    /// A replica of the server on `master_port` (`--replicaof`).
    pub fn start_replica(master_port: u16, aof: bool) -> RedisServer {
        let args = ["--replicaof", "127.0.0.1", &master_port.to_string()].map(String::from).to_vec();
        Self::launch(super::free_port(), aof, None, args)
    }

    /// A node for a test cluster (`--cluster-enabled yes`, its nodes.conf in its directory).
    pub(super) fn start_cluster_node(port: u16, aof: bool) -> RedisServer {
        Self::launch(port, aof, Some(super::free_port()), Vec::new())
    }

    /// Starts with a TLS port too, its certificate (for 127.0.0.1 and localhost) signed by
    /// `ca`; with `client_certs`, it refuses clients without a certificate from `ca`, and the
    /// endpoint carries one. `ca` must outlive the server (its files are read on restart).
    pub fn start_tls(ca: &TestCa, client_certs: bool) -> RedisServer {
        let port = super::free_port();
        let (args, endpoint) = tls_args(ca, port, client_certs);
        let mut redis = Self::launch(port, false, None, args);
        redis.tls = Some(endpoint);
        redis
    }

    /// A node for a test cluster whose clients and cluster bus speak TLS (see [`Self::start_tls`]).
    pub(super) fn start_tls_cluster_node(ca: &TestCa, client_certs: bool) -> RedisServer {
        let port = super::free_port();
        let (mut args, endpoint) = tls_args(ca, port, client_certs);
        args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from));
        let mut redis = Self::launch(port, false, Some(super::free_port()), args);
        redis.tls = Some(endpoint);
        redis
    }

    fn launch(port: u16, aof: bool, cluster_bus: Option<u16>, extra: Vec<String>) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("sluice-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = spawn(port, &dir, aof, cluster_bus, &extra);
        let server = RedisServer { port, child, dir, aof, cluster_bus, extra, tls: None };
        server.wait_ready();
        server
    }

    /// The `[redis]` section's body for a Sluice config: the TLS port with its CA (and client
    /// certificate) when there is one, else the plain port.
    pub fn config_body(&self) -> String {
        match &self.tls {
            Some(tls) => format!("url = \"{}\"\n{}", tls.url(), tls.files_toml()),
            None => format!("url = \"{}\"", self.url()),
        }
    }

    /// kill -9, leaving the port closed until [`RedisServer::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the process: a server that hangs without
    /// closing its connections.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} redis-server on port {}", self.port);
    }

    /// kill -9, then start again on the same port from the same directory.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, &self.dir, self.aof, self.cluster_bus, &self.extra);
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

impl TlsEndpoint {
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }

    /// The `[redis]` keys naming the CA and the client certificate.
    pub fn files_toml(&self) -> String {
        let mut toml = format!("ca_file = \"{}\"", self.ca_file.display());
        if let Some(client) = &self.client {
            toml +=
                &format!("\nclient_cert = \"{}\"\nclient_key = \"{}\"", client.cert.display(), client.key.display());
        }
        toml
    }
}

/// redis-server arguments for a TLS port beside `port`, and how clients reach it.
fn tls_args(ca: &TestCa, port: u16, client_certs: bool) -> (Vec<String>, TlsEndpoint) {
    let tls_port = super::free_port();
    let server = ca.issue(&format!("redis-{port}"), &["127.0.0.1", "localhost"]);
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let args = [
        "--tls-port".to_string(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        path(&server.cert),
        "--tls-key-file".into(),
        path(&server.key),
        "--tls-ca-cert-file".into(),
        path(&ca.ca_file),
        "--tls-auth-clients".into(),
        if client_certs { "yes" } else { "no" }.into(),
    ];
    let endpoint = TlsEndpoint {
        port: tls_port,
        ca_file: ca.ca_file.clone(),
        client: client_certs.then(|| ca.issue(&format!("client-{port}"), &["sluice"])),
    };
    (args.to_vec(), endpoint)
}

fn spawn(port: u16, dir: &std::path::Path, aof: bool, cluster_bus: Option<u16>, extra: &[String]) -> Child {
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
        .args(extra)
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
