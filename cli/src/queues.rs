//! `sluice queues`: a top-like view of the destinations with work or a throttle in force:
//! queue depth, the rate they may use now against their limit, connections, throttled state.

use std::{io::IsTerminal, time::Duration};

use serde_json::Value;

use crate::client::{CliError, Client};

/// One screen of the table.
pub fn render(destinations: &Value) -> String {
    let mut out = format!(
        "{:<32} {:>10} {:>12} {:>10} {:>6}  {}\n",
        "DESTINATION", "QUEUED", "RATE NOW/s", "LIMIT/s", "CONNS", "STATE"
    );
    for d in destinations["destinations"].as_array().into_iter().flatten() {
        let state = if d["suspended_until"].is_string() {
            format!("suspended until {}", d["suspended_until"].as_str().unwrap_or(""))
        } else if d["throttled"] == true {
            format!("slowed to {:.0}%", d["rate_factor"].as_f64().unwrap_or(1.0) * 100.0)
        } else {
            "ok".into()
        };
        out.push_str(&format!(
            "{:<32} {:>10} {:>12.1} {:>10.1} {:>6}  {}\n",
            d["domain"].as_str().unwrap_or("?"),
            d["queued"].as_i64().unwrap_or(0),
            d["effective_rate_per_second"].as_f64().unwrap_or(0.0),
            d["limit"]["rate_per_second"].as_f64().unwrap_or(0.0),
            d["limit"]["connections"].as_u64().unwrap_or(0),
            state
        ));
    }
    if destinations["truncated"] == true {
        out.push_str("(more destinations than shown)\n");
    }
    out
}

/// Prints the table every `every` until interrupted, or once. Outside a terminal (piped into
/// a file or a program) it prints one frame and exits, as `top -b -n 1` does: refreshes and
/// screen-clearing codes mean nothing there.
pub async fn run(client: &Client, once: bool, json_output: bool, every: Duration) -> Result<(), CliError> {
    let once = once || !std::io::stdout().is_terminal();
    loop {
        let destinations = client.call("GET", "/v1/destinations", None).await?;
        if json_output {
            println!("{destinations}");
        } else {
            // Clear the screen between refreshes, like top.
            if !once {
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", render(&destinations));
        }
        if once {
            return Ok(());
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_table_shows_depth_rates_and_state() {
        let view = json!({"destinations": [
            {"domain": "@google", "queued": 1200, "effective_rate_per_second": 2.0, "rate_factor": 0.1,
             "limit": {"rate_per_second": 20.0, "connections": 5}, "throttled": true, "suspended_until": null},
            {"domain": "x.example", "queued": 3, "effective_rate_per_second": 100.0, "rate_factor": 1.0,
             "limit": {"rate_per_second": 100.0, "connections": 10}, "throttled": false, "suspended_until": null}
        ], "truncated": false});
        let table = super::render(&view);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("DESTINATION"));
        assert!(
            lines[1].starts_with("@google") && lines[1].contains("1200") && lines[1].ends_with("slowed to 10%"),
            "{table}"
        );
        assert!(lines[2].ends_with("ok"), "{table}");
    }
}
