//! Spawning the real binaries in tests.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

/// Path of a workspace binary next to the running test executable (`target/<profile>/NAME`).
/// Panics, saying what to run, when it is missing or older than any source file it was built
/// from, so a test never runs a stale binary.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    let build = "run `cargo build --workspace --all-features` first (scripts/test.sh does)";
    assert!(path.exists(), "binary {} not built; {build}", path.display());
    if let Some(newer) = newer_source(&path) {
        panic!("binary {} is older than {}; {build}", path.display(), newer.display());
    }
    path
}

/// A source file the binary was built from that changed since (cargo's dep-info file beside
/// the binary lists them, the same list cargo checks).
fn newer_source(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let info = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    let (_, sources) = info.lines().next()?.split_once(": ")?;
    dep_info_paths(sources).find(|source| std::fs::metadata(source).and_then(|m| m.modified()).is_ok_and(|t| t > built))
}

/// The paths of a dep-info line, where a space inside a path is written `\ `.
fn dep_info_paths(line: &str) -> impl Iterator<Item = PathBuf> + '_ {
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => current.push(chars.next().unwrap_or(' ')),
            ' ' if !current.is_empty() => paths.push(PathBuf::from(std::mem::take(&mut current))),
            ' ' => {}
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths.into_iter()
}

/// A child process whose stdout and stderr go to a log file; killed on drop.
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Spawns `bin` with `args` and extra environment.
    pub fn spawn(name: &str, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        static SPAWNED: AtomicU32 = AtomicU32::new(0);
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("sluice-{name}-{}-{n}.log", std::process::id()));
        let out = File::create(&log).unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(args).stdout(Stdio::from(out.try_clone().unwrap())).stderr(Stdio::from(out));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Process { name: name.to_string(), log, child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("process already stopped");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait().unwrap()
    }

    /// Sends SIGTERM without waiting for the exit.
    pub fn signal_term(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Polls for the process to exit by itself within `deadline`; `None` if it is still running.
    pub fn wait_exit(&mut self, deadline: std::time::Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running (it has not exited, crashed or been stopped).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.take().expect("process already stopped").wait().unwrap()
    }

    /// Whatever the process has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_paths_keep_escaped_spaces() {
        let paths: Vec<PathBuf> = dep_info_paths("/a/b.rs /c\\ d/e.rs  /f.lua").collect();
        assert_eq!(paths, [PathBuf::from("/a/b.rs"), PathBuf::from("/c d/e.rs"), PathBuf::from("/f.lua")]);
    }

    #[test]
    fn a_source_changed_after_the_build_makes_the_binary_stale() {
        let dir = std::env::temp_dir().join(format!("sluice-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (binary, source) = (dir.join("bin"), dir.join("main.rs"));
        std::fs::write(&source, "fn main() {}").unwrap();
        std::fs::write(&binary, "").unwrap();
        std::fs::write(dir.join("bin.d"), format!("{}: {}\n", binary.display(), source.display())).unwrap();
        let at = |secs| std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let touch = |path: &Path, secs| {
            std::fs::File::options().write(true).open(path).unwrap().set_modified(at(secs)).unwrap()
        };
        touch(&source, 1_000);
        touch(&binary, 2_000);
        assert_eq!(newer_source(&binary), None, "built after its source");
        touch(&source, 3_000);
        assert_eq!(newer_source(&binary), Some(source));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
