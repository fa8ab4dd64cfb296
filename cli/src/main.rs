//! `sluice`: the operator's command line.
//!
//! - `sluice doctor DOMAIN`: checks SPF, DKIM, DMARC and reverse DNS for a sending domain
//!   against the configuration ([`doctor`]).
//! - `sluice campaign|suppress|dlq|queues ...`: the admin API ([`client`], [`campaign`], [`lists`]),
//!   with `--api-url`/`SLUICE_API_URL` and `--token`/`SLUICE_TOKEN`; `--json` prints the
//!   API's JSON for scripts.
//!
//! Exit codes: 0 done, 1 the API refused (or a check failed), 2 bad usage, input or config,
//! 3 the API could not be reached.

mod campaign;
mod client;
mod doctor;
mod lists;
mod queues;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use sluice_shared::config::{Config, Role};

use client::{CliError, Client};

#[derive(Parser)]
#[command(name = "sluice", about = "Sluice operator CLI")]
struct Cli {
    /// TOML config file (the workers'), for doctor; SLUICE__SECTION__KEY variables override it.
    #[arg(long, env = "SLUICE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Admin API base URL.
    #[arg(long, env = "SLUICE_API_URL", global = true, default_value = "http://127.0.0.1:8025")]
    api_url: String,
    /// Admin API Bearer token.
    #[arg(long, env = "SLUICE_TOKEN", global = true, hide_env_values = true, default_value = "")]
    token: String,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
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
    /// Campaigns.
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// The suppression list.
    #[command(subcommand)]
    Suppress(SuppressCmd),
    /// Dead letters.
    #[command(subcommand)]
    Dlq(DlqCmd),
    /// A live view of destinations with work or a throttle: depth, rate now, limit, state.
    Queues {
        /// Print once and exit (for scripts).
        #[arg(long)]
        once: bool,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 2)]
        every: u64,
    },
}

#[derive(Subcommand)]
enum CampaignCmd {
    /// Create from a JSON file (the POST /v1/campaigns body); with --csv, recipients come from
    /// a CSV whose header row names the vars (and has an `email` column).
    Create {
        file: PathBuf,
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Counts and status; --watch shows a live progress bar until it is finished.
    Status {
        id: String,
        #[arg(long)]
        watch: bool,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Cancel {
        id: String,
    },
}

/// A suppression's scope on the command line: `--scope all|campaigns|list`, `--list NAME`.
#[derive(clap::Args)]
struct ScopeArgs {
    /// all (nothing is sent), campaigns (transactional mail still is) or list.
    #[arg(long)]
    scope: Option<String>,
    /// A list's name (scope list).
    #[arg(long)]
    list: Option<String>,
}

#[derive(Subcommand)]
enum SuppressCmd {
    Add {
        email: String,
        #[arg(long, default_value = "manual")]
        reason: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Remove an address's suppressions (all of them, or the scope given).
    Remove {
        email: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    List,
    /// Stream a CSV (header line with an `email` column; optional scope, list, reason, ...) or
    /// an NDJSON file (.ndjson, .jsonl) to the import.
    Import {
        file: PathBuf,
    },
    /// Stream every suppression (or one scope's) to stdout.
    Export {
        /// csv or ndjson.
        #[arg(long, default_value = "csv")]
        format: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

#[derive(Subcommand)]
enum DlqCmd {
    List,
    Requeue { id: String },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = Client::new(&cli.api_url, &cli.token);
    let result = match cli.command {
        Command::Doctor { domain, nameservers } => return run_doctor(cli.config, domain, nameservers, &client).await,
        Command::Campaign(c) => run_campaign(&client, c, cli.json).await,
        Command::Suppress(c) => run_suppress(&client, c, cli.json).await,
        Command::Dlq(c) => run_dlq(&client, c, cli.json).await,
        Command::Queues { once, every } => {
            queues::run(&client, once, cli.json, std::time::Duration::from_secs(every.max(1)))
                .await
                .map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e}");
            e.exit_code()
        }
    }
}

fn print(json_output: bool, value: &Value, text: impl FnOnce() -> String) {
    if json_output {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

async fn run_campaign(client: &Client, cmd: CampaignCmd, json_output: bool) -> Result<ExitCode, CliError> {
    match cmd {
        CampaignCmd::Create { file, csv } => {
            let (result, errors) = campaign::create(client, &file, csv.as_deref()).await?;
            for e in &errors {
                eprintln!("row {}: {}", e.row, e.message);
            }
            print(
                json_output,
                &json!({"campaign": result, "row_errors": errors.iter().map(|e| json!({"row": e.row, "error": e.message})).collect::<Vec<_>>()}),
                || {
                    format!(
                        "created {} ({}), {} rows with errors",
                        result["id"].as_str().unwrap_or("?"),
                        result["status"].as_str().unwrap_or("?"),
                        errors.len()
                    )
                },
            );
            // Created, but some rows were not: scripts should notice.
            Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        CampaignCmd::Status { id, watch } => {
            let view = campaign::status(client, &id, watch, json_output).await?;
            print(json_output, &view, || campaign::describe(&view));
            Ok(ExitCode::SUCCESS)
        }
        CampaignCmd::Pause { id } => act(client, &id, "pause", json_output).await,
        CampaignCmd::Resume { id } => act(client, &id, "resume", json_output).await,
        CampaignCmd::Cancel { id } => act(client, &id, "cancel", json_output).await,
    }
}

/// A status transition: pause, resume or cancel.
async fn act(client: &Client, id: &str, action: &str, json_output: bool) -> Result<ExitCode, CliError> {
    let view = client.call("POST", &format!("/v1/campaigns/{id}/{action}"), None).await?;
    print(json_output, &view, || format!("{id}: {}", view["status"].as_str().unwrap_or("?")));
    Ok(ExitCode::SUCCESS)
}

async fn run_suppress(client: &Client, cmd: SuppressCmd, json_output: bool) -> Result<ExitCode, CliError> {
    match cmd {
        SuppressCmd::Add { email, reason, scope } => {
            let v = lists::suppress_add(client, &email, &reason, scope.scope.as_deref(), scope.list.as_deref()).await?;
            print(json_output, &v, || format!("suppressed {email}"));
        }
        SuppressCmd::Remove { email, scope } => {
            let v = lists::suppress_remove(client, &email, scope.scope.as_deref(), scope.list.as_deref()).await?;
            print(json_output, &v, || format!("removed {email}"));
        }
        SuppressCmd::List => {
            let items = lists::all_pages(client, "/v1/suppressions").await?;
            print(json_output, &Value::Array(items.clone()), || {
                items
                    .iter()
                    .map(|i| {
                        let f = |k: &str| i[k].as_str().unwrap_or("").to_string();
                        format!("{}\t{}\t{}\t{}", f("email"), f("scope"), f("list"), f("reason"))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SuppressCmd::Import { file } => {
            let reply = lists::suppress_import(client, &file).await?;
            for r in reply["rejected"].as_array().into_iter().flatten() {
                eprintln!("line {}: {}", r["line"], r["error"].as_str().unwrap_or(""));
            }
            let n = |k: &str| reply[k].as_u64().unwrap_or(0);
            let rejected = n("rejected_count");
            print(json_output, &reply, || {
                format!("added {}, already there {}, {rejected} lines refused", n("added"), n("existing"))
            });
            if rejected > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        SuppressCmd::Export { format, scope } => {
            lists::suppress_export(client, &format, scope.scope.as_deref(), scope.list.as_deref()).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_dlq(client: &Client, cmd: DlqCmd, json_output: bool) -> Result<ExitCode, CliError> {
    match cmd {
        DlqCmd::List => {
            let items = lists::all_pages(client, "/v1/dead-letters").await?;
            print(json_output, &Value::Array(items.clone()), || {
                items
                    .iter()
                    .map(|i| {
                        format!(
                            "{}\t{}\t#{}\t{} deliveries",
                            i["id"].as_str().unwrap_or(""),
                            i["campaign"].as_str().unwrap_or(""),
                            i["index"],
                            i["deliveries"]
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DlqCmd::Requeue { id } => {
            let v = client.call("POST", &format!("/v1/dead-letters/{id}/requeue"), None).await?;
            print(json_output, &v, || format!("requeued {id}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_doctor(config: Option<PathBuf>, domain: String, nameservers: Vec<String>, client: &Client) -> ExitCode {
    let mut config = match Config::load(config.as_deref(), Role::Worker) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice doctor: {e}");
            return ExitCode::from(2);
        }
    };
    if !nameservers.is_empty() {
        config.dns.nameservers = nameservers;
    }
    match doctor::run(&config, &domain.to_ascii_lowercase(), client).await {
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
