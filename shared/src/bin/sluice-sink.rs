//! `sluice-sink`: a local SMTP sink for the demo and benchmarks (see `testkit::smtp_sink` for
//! the scripted replies). Prints a line of totals every `--every` seconds.

use std::time::Duration;

use clap::Parser;
use sluice_shared::testkit::smtp_sink::SmtpSink;

#[derive(Parser)]
#[command(about = "Local SMTP sink with scripted replies per recipient")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: String,
    /// Seconds between totals lines (0: never).
    #[arg(long, default_value_t = 0)]
    every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sink = SmtpSink::bind(&args.listen, false).await?;
    println!("sluice-sink listening on {}", sink.addr);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(args.every.max(1))) => {
                if args.every > 0 {
                    println!("accepted={} connections={}", sink.state.accepted(), sink.state.connections.load(std::sync::atomic::Ordering::Relaxed));
                }
            }
        }
    }
    println!("accepted={}", sink.state.accepted());
    Ok(())
}
