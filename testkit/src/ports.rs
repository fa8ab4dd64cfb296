//! Ports for test servers that nothing else takes between the moment a test picks one and the
//! moment its server binds it.
//!
//! Binding port 0 and closing the socket hands out a port from the kernel's ephemeral range,
//! the range every outgoing connection (Redis clients, SMTP sessions) draws its source port
//! from: under a loaded parallel run one of those took a scheduler's API port before the
//! scheduler bound it. So test ports come from below that range, and each is reserved by a file
//! created exclusively, so two test processes never pick the same port. Reservations live in a
//! folder per hour and count for the current and the previous hour, then are removed.

use std::{
    fs::{self, OpenOptions},
    net::TcpListener,
    path::{Path, PathBuf},
    sync::Once,
    time::{SystemTime, UNIX_EPOCH},
};

use rand::Rng;

/// The lowest port handed out (well above the registered services tests might meet).
const LOWEST: u16 = 10_000;

/// A TCP port on 127.0.0.1 that is free and that no other test process will be given.
pub fn free_port() -> u16 {
    let (low, high) = range();
    let root = std::env::temp_dir().join("sluice-test-ports");
    let hour = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 3600;
    let current = root.join(hour.to_string());
    let previous = root.join((hour - 1).to_string());
    fs::create_dir_all(&current).unwrap_or_else(|e| panic!("create {}: {e}", current.display()));
    static CLEANED: Once = Once::new();
    CLEANED.call_once(|| remove_older_than(&root, hour - 1));
    let mut rng = rand::rng();
    for _ in 0..10_000 {
        let port = rng.random_range(low..high);
        if !previous.join(port.to_string()).exists()
            && reserve(&current, port)
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free test port in {low}..{high}");
}

/// From [`LOWEST`] up to the start of the kernel's ephemeral range.
fn range() -> (u16, u16) {
    let ephemeral_start = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    (LOWEST, ephemeral_start.max(LOWEST + 1_000))
}

/// True when this process created the port's reservation file (false when another had).
fn reserve(dir: &Path, port: u16) -> bool {
    OpenOptions::new().write(true).create_new(true).open(dir.join(port.to_string())).is_ok()
}

/// Removes reservation folders of hours before `oldest_kept` (best effort: another test
/// process may be removing them at the same time).
fn remove_older_than(root: &Path, oldest_kept: u64) {
    let Ok(entries) = fs::read_dir(root) else { return };
    let stale: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()?.parse::<u64>().ok()).is_some_and(|h| h < oldest_kept))
        .collect();
    for dir in stale {
        let _ = fs::remove_dir_all(dir);
    }
}
