//! `sluice-sink`: a local SMTP sink for the demo, the benchmarks and the chaos script (see
//! `testkit::smtp_sink` for the scripted replies).
//! - `--every N` prints a line of totals every N seconds;
//! - `--refuse-file PATH`: while PATH exists the sink refuses connections (relay "down");
//! - `--dump PATH`: on exit (SIGTERM or ctrl-c), writes "address count" for every recipient.

use std::{io::Write, path::PathBuf, sync::atomic::Ordering, time::Duration};

use clap::Parser;
use sluice_shared::testkit::smtp_sink::SmtpSink;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(about = "Local SMTP sink with scripted replies per recipient")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: String,
    /// Seconds between totals lines (0: never).
    #[arg(long, default_value_t = 0)]
    every: u64,
    /// Refuse connections while this file exists.
    #[arg(long)]
    refuse_file: Option<PathBuf>,
    /// Write per-recipient delivery counts here on exit.
    #[arg(long)]
    dump: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sink = SmtpSink::bind(&args.listen, false).await?;
    println!("sluice-sink listening on {}", sink.addr);
    let mut term = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                ticks += 1;
                if let Some(path) = &args.refuse_file {
                    let refuse = path.exists();
                    if refuse != sink.state.refusing.load(Ordering::SeqCst) {
                        println!("refusing={refuse}");
                        sink.state.set_refusing(refuse);
                    }
                }
                if args.every > 0 && ticks.is_multiple_of(args.every * 10) {
                    println!("accepted={} connections={}", sink.state.accepted(), sink.state.connections.load(Ordering::Relaxed));
                }
            }
        }
    }
    println!("accepted={}", sink.state.accepted());
    if let Some(path) = &args.dump {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (address, count) in sink.state.delivered.lock().unwrap().iter() {
            writeln!(out, "{address} {count}")?;
        }
        out.flush()?;
    }
    Ok(())
}
