//! `sluice-sink`: a local SMTP sink for the demo, the benchmarks and the chaos script (see
//! `testkit::smtp_sink` for the scripted replies).
//! - `--every N` prints a line of totals every N seconds;
//! - `--refuse-file PATH`: while PATH exists the sink refuses connections (relay "down");
//! - `--dump PATH`: on exit (SIGTERM or ctrl-c), writes "address count" for every recipient;
//! - `--latency-header NAME --latency-out PATH`: for messages carrying `NAME: <unix µs>`,
//!   writes on exit the microseconds from that time to acceptance, one per line.

use std::{io::Write, path::PathBuf, sync::atomic::Ordering, time::Duration};

use clap::Parser;
use sluice_testkit::smtp_sink::SmtpSink;
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
    /// Header holding a message's send time (unix microseconds), for latency figures.
    #[arg(long, requires = "latency_out")]
    latency_header: Option<String>,
    /// Where the latencies go on exit (microseconds, one per line).
    #[arg(long)]
    latency_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sink = SmtpSink::bind(&args.listen, false).await?;
    if let Some(h) = &args.latency_header {
        sink.state.measure_latency(h);
    }
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
    if let Some(path) = &args.latency_out {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for us in sink.state.latencies_us.lock().unwrap().iter() {
            writeln!(out, "{us}")?;
        }
        out.flush()?;
    }
    Ok(())
}
