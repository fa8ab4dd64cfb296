//! `sluice`: the operator's command line.
//!
//! - `sluice doctor DOMAIN`: checks SPF, DKIM, DMARC and reverse DNS for a sending domain
//!   against the configuration ([`doctor`]).
//!
//! Exit codes: 0 all good, 1 a check failed, 2 bad usage or configuration.

mod doctor;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use sluice_shared::config::{Config, Role};

#[derive(Parser)]
#[command(name = "sluice", about = "Sluice operator CLI")]
struct Cli {
    /// TOML config file (the workers'); SLUICE__SECTION__KEY variables override it.
    #[arg(long, env = "SLUICE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a sending domain's DNS: SPF covers the IP pool, the DKIM selectors publish the
    /// configured keys, DMARC exists and aligns, each pool address has matching PTR and A.
    Doctor {
        /// The From domain to check.
        domain: String,
        /// Nameservers to ask (host:port), instead of `dns.nameservers` or the system's.
        #[arg(long = "nameserver")]
        nameservers: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Doctor { domain, nameservers } => {
            let mut config = match Config::load(cli.config.as_deref(), Role::Worker) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("sluice doctor: {e}");
                    return ExitCode::from(2);
                }
            };
            if !nameservers.is_empty() {
                config.dns.nameservers = nameservers;
            }
            match doctor::run(&config, &domain.to_ascii_lowercase()).await {
                Ok(report) => {
                    print!("{}", report.render());
                    if report.all_pass() { ExitCode::SUCCESS } else { ExitCode::from(1) }
                }
                Err(e) => {
                    eprintln!("sluice doctor: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
