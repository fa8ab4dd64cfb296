//! A private PostgreSQL for one test: `initdb` into a fresh temporary directory, `postgres` on a
//! free 127.0.0.1 port, a database `sluice` owned by the superuser `sluice` (trust auth on
//! loopback only), killed and removed on drop. Debian's server binaries live in
//! `/usr/lib/postgresql/<major>/bin` (scripts/test.sh installs the package). PostgreSQL refuses
//! to run as root, so under root the server runs as the `postgres` user the package creates.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

/// The newest installed server's binary directory (or `SLUICE_PG_BINDIR`).
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SLUICE_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("no PostgreSQL server in /usr/lib/postgresql/*/bin; scripts/test.sh installs it (apt-get install postgresql)")
    })
}

/// The uid and gid to run the server as: the `postgres` user when we are root.
fn run_as() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    Some((
        id(&["-u", "postgres"]).expect("user postgres (package postgresql-common)"),
        id(&["-g", "postgres"]).expect("group postgres"),
    ))
}

fn command(bin: &Path, program: &str) -> Command {
    let mut command = Command::new(bin.join(program));
    if let Some((uid, gid)) = run_as() {
        use std::os::unix::process::CommandExt;
        command.uid(uid).gid(gid);
    }
    command
}

fn run(what: &str, command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e} (scripts/test.sh installs postgresql)"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl PostgresServer {
    /// initdb, start, and create the database `sluice`. Panics loudly when PostgreSQL is not
    /// installed: a missing dependency is a failure, never a skip.
    pub fn start() -> PostgresServer {
        let bin = bin_dir();
        let port = super::free_port();
        let dir = std::env::temp_dir().join(format!("sluice-pg-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        run(
            "initdb",
            command(&bin, "initdb")
                .args(["-U", "sluice", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "-D"])
                .arg(dir.join("data")),
        );
        let mut server = PostgresServer { port, dir, bin, child: None };
        server.launch();
        server.psql("postgres", "CREATE DATABASE sluice");
        server
    }

    /// `postgres://sluice@127.0.0.1:<port>/sluice`
    pub fn url(&self) -> String {
        format!("postgres://sluice@127.0.0.1:{}/sluice", self.port)
    }

    /// Runs `sql` with psql in database `sluice`; its output unaligned, tuples only.
    pub fn sql(&self, sql: &str) -> String {
        self.psql("sluice", sql)
    }

    /// The whole database `sluice` as SQL (schema and data), as pg_dump writes it.
    pub fn dump(&self) -> String {
        run(
            "pg_dump",
            Command::new(self.bin.join("pg_dump"))
                .args(["-h", "127.0.0.1", "-U", "sluice", "-p"])
                .arg(self.port.to_string())
                .arg("sluice"),
        )
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        run(
            "psql",
            Command::new(self.bin.join("psql"))
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "sluice", "-p"])
                .arg(self.port.to_string())
                .args(["-d", db, "-c", sql]),
        )
    }

    /// Stops the server at once, as a crash would (immediate shutdown: SIGQUIT, the postmaster
    /// takes its backends down and exits), leaving the port closed until
    /// [`PostgresServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-QUIT", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let data = self.dir.join("data");
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(self.dir.join("server.log"), Some(uid), Some(gid)).unwrap();
        }
        let child = command(&self.bin, "postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(&self.dir)
            // No fsync (tests need no durability against power loss), but commits are still
            // written before they are acknowledged, so a crash-stop loses nothing committed.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start postgres ({e}); scripts/test.sh installs postgresql"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!("postgres exited ({status}) on port {}: {log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("postgres on port {} was not ready within 30 s", self.port);
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
