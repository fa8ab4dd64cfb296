//! A stock Postfix of a test's own (Debian's package): its config and queue under a fresh
//! temporary directory, its only listener on a free 127.0.0.1 port, stopped on drop. The
//! system's Postfix configuration is not touched. Needs root, as Postfix's master does
//! (scripts/test.sh runs as root and installs the package).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

pub struct Postfix {
    pub dir: PathBuf,
    pub port: u16,
}

fn run(what: &str, command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e} (scripts/test.sh installs postfix)"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postfix {
    /// Starts one with `main_cf` appended to a base that delivers nothing locally.
    pub fn start(main_cf: &str) -> Postfix {
        let port = super::free_port();
        let dir = std::env::temp_dir().join(format!("sluice-postfix-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("queue")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        run("chown", Command::new("chown").arg("postfix").arg(dir.join("data")));
        std::fs::copy("/etc/postfix/master.cf", dir.join("master.cf"))
            .expect("/etc/postfix/master.cf (package postfix)");
        let d = dir.display();
        let base = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = postfix.test.localhost\n\
             mydestination =\nmynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\n\
             smtp_host_lookup = native\nsmtp_dns_support_level = disabled\n\
             maillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\n"
        );
        std::fs::write(dir.join("main.cf"), format!("{base}{main_cf}\n")).unwrap();
        let master = std::fs::read_to_string(dir.join("master.cf")).unwrap();
        let master: String = master
            .lines()
            .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                ["smtp", "inet", ..] => format!("127.0.0.1:{port} inet n - n - - smtpd\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        std::fs::write(dir.join("master.cf"), master).unwrap();
        let config = dir.to_str().unwrap().to_string();
        run("postconf", Command::new("postconf").args(["-c", &config, "-F", "*/*/chroot = n"]));
        let _ = Command::new("postfix").args(["-c", &config, "set-permissions"]).output();
        run("postfix start", Command::new("postfix").args(["-c", &config, "start"]));
        Postfix { dir, port }
    }

    /// Hands `message` to Postfix with its `sendmail`, for `to`, from `from`.
    pub fn sendmail(&self, from: &str, to: &str, message: &[u8]) {
        use std::io::Write;
        let mut child = Command::new("sendmail")
            .args(["-C", self.dir.to_str().unwrap(), "-f", from, to])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sendmail (package postfix)");
        child.stdin.take().unwrap().write_all(message).unwrap();
        assert!(child.wait().unwrap().success(), "sendmail failed; see {}", self.dir.join("maillog").display());
    }

    /// What Postfix logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").args(["-c", self.dir.to_str().unwrap(), "stop"]).output();
    }
}
