//! `sluice doctor DOMAIN`: what mailbox providers check before they trust a sender (DOMAIN.md
//! section 1), against this configuration: SPF of the envelope domain covers every pool
//! address, each DKIM selector publishes the configured key, DMARC exists and aligns, docomo
//! will not mark the mail as spoofed, each pool address has a PTR whose name resolves back to
//! it and matches its EHLO name; and, through the API, whether the reputation guard has
//! tripped for the domain.

mod spf;

use std::net::IpAddr;

use crate::client::{CliError, Client};
use sluice_shared::{
    config::{Config, DkimAlgorithm},
    dkim::Signer,
    dns::{Dns, DnsError},
};

/// One verdict.
pub struct Item {
    pub check: &'static str,
    pub pass: bool,
    /// Not checked (e.g. the API could not be reached); neither pass nor fail.
    pub skipped: bool,
    pub detail: String,
}

#[derive(Default)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    fn add(&mut self, check: &'static str, pass: bool, detail: impl Into<String>) {
        self.items.push(Item { check, pass, skipped: false, detail: detail.into() });
    }

    fn skip(&mut self, check: &'static str, detail: impl Into<String>) {
        self.items.push(Item { check, pass: false, skipped: true, detail: detail.into() });
    }

    pub fn all_pass(&self) -> bool {
        self.items.iter().all(|i| i.pass || i.skipped)
    }

    /// One line per verdict: `PASS  dkim   ...`.
    pub fn render(&self) -> String {
        let word = |i: &Item| match (i.skipped, i.pass) {
            (true, _) => "SKIP",
            (false, true) => "PASS",
            (false, false) => "FAIL",
        };
        self.items.iter().map(|i| format!("{}  {:<6} {}\n", word(i), i.check, i.detail)).collect()
    }
}

pub async fn run(config: &Config, domain: &str, api: &Client) -> Result<Report, String> {
    let dns = Dns::from_config(&config.dns)?;
    let signer = Signer::from_config(&config.dkim).map_err(|e| e.to_string())?;
    let envelope = config.bounces.return_path_domain.clone().unwrap_or_else(|| domain.to_string());
    let pool: Vec<(IpAddr, String)> =
        config.smtp.ip_pool.iter().map(|s| (s.address, s.helo.to_ascii_lowercase())).collect();
    let mut report = Report::default();
    check_spf(&dns, &envelope, &pool, &mut report).await;
    check_dkim(&dns, &signer, domain, &mut report).await;
    check_dmarc(&dns, domain, &envelope, signer.has_key(domain), &mut report).await;
    check_reverse(&dns, &pool, &mut report).await;
    check_guard(api, domain, &mut report).await;
    Ok(report)
}

async fn check_spf(dns: &Dns, envelope: &str, pool: &[(IpAddr, String)], report: &mut Report) {
    let record = match spf::record(dns, envelope).await {
        Ok(r) => r,
        Err(e) => return report.add("spf", false, e),
    };
    if pool.is_empty() {
        return report.add(
            "spf",
            true,
            format!("{envelope}: {record} (no smtp.ip_pool: make sure it covers your relay's addresses)"),
        );
    }
    for (ip, _) in pool {
        match spf::check(dns, envelope, *ip).await {
            spf::Spf::Pass => report.add("spf", true, format!("{envelope} passes for {ip}: {record}")),
            spf::Spf::Fail(why) | spf::Spf::Missing(why) => report.add("spf", false, format!("{envelope}: {why}")),
        }
    }
}

/// TXT records of a name; a name that does not exist has none.
async fn txt(dns: &Dns, name: &str) -> Result<Vec<String>, DnsError> {
    match dns.txt(name).await {
        Err(DnsError::NoSuchDomain(_)) => Ok(Vec::new()),
        other => other,
    }
}

/// `k=v` tags of a DKIM or DMARC record.
fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.chars().filter(|c| !c.is_whitespace()).collect()))
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn check_dkim(dns: &Dns, signer: &Signer, domain: &str, report: &mut Report) {
    let keys = signer.keys_for(domain);
    if keys.is_empty() {
        return report.add("dkim", false, format!("no [[dkim.keys]] for {domain}"));
    }
    for key in keys {
        let name = format!("{}._domainkey.{domain}", key.selector);
        let when = key.from.map(|f| format!(" (signs from {f})")).unwrap_or_default();
        let records = match txt(dns, &name).await {
            Ok(r) => r,
            Err(e) => {
                report.add("dkim", false, format!("{name}: {e}"));
                continue;
            }
        };
        let Some(record) = records.iter().find(|r| r.contains("p=")) else {
            report.add("dkim", false, format!("{name}: no DKIM record{when}"));
            continue;
        };
        let t = tags(record);
        let k = tag(&t, "k").unwrap_or("rsa");
        let expected_k = match key.algorithm {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        };
        if k != expected_k {
            report.add("dkim", false, format!("{name}: k={k}, but the configured key is {expected_k}{when}"));
        } else if tag(&t, "p") != Some(key.public_key_b64().as_str()) {
            report.add(
                "dkim",
                false,
                format!("{name}: p= is not the configured key's public key{when}; publish: {}", key.dns_record()),
            );
        } else {
            report.add("dkim", true, format!("{name}: publishes the configured {expected_k} key{when}"));
        }
    }
}

/// Relaxed alignment: one domain is the other or a subdomain of it (an approximation of
/// "same organizational domain" that needs no public suffix list).
fn aligned(a: &str, b: &str, strict: bool) -> bool {
    a == b || (!strict && (a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))))
}

async fn check_dmarc(dns: &Dns, domain: &str, envelope: &str, has_dkim: bool, report: &mut Report) {
    let name = format!("_dmarc.{domain}");
    let records = match txt(dns, &name).await {
        Ok(r) => r,
        Err(e) => return report.add("dmarc", false, format!("{name}: {e}")),
    };
    let Some(record) = records.iter().find(|r| r.to_ascii_lowercase().starts_with("v=dmarc1")) else {
        report.add("dmarc", false, format!("{name}: no DMARC record (Gmail and Yahoo require one; p=none is enough)"));
        return check_docomo("missing", has_dkim, domain, report);
    };
    let t = tags(record);
    let policy = tag(&t, "p").unwrap_or("missing");
    let dkim_ok = has_dkim; // our signatures use d= the From domain itself
    let spf_ok = aligned(envelope, domain, tag(&t, "aspf") == Some("s"));
    let detail = format!(
        "{name}: p={policy}; DKIM {} (d={domain}); SPF {} ({envelope})",
        if dkim_ok { "aligned" } else { "not signing" },
        if spf_ok { "aligned" } else { "not aligned" }
    );
    report.add("dmarc", policy != "missing" && (dkim_ok || spf_ok), detail);
    check_docomo(policy, dkim_ok, domain, report);
}

/// NTT docomo marks mail as spoofed (since October 2024) when its From domain has no DMARC
/// record or fails DMARC. Mail forwarded on the carriers' paths loses SPF, so only an aligned
/// DKIM signature keeps it passing; p=none lets spoofed mail in the domain's name through,
/// marked, so quarantine or reject is advised once reports show every source aligned.
fn check_docomo(policy: &str, dkim_ok: bool, domain: &str, report: &mut Report) {
    let pass = policy != "missing" && dkim_ok;
    let detail = match (pass, policy) {
        (false, "missing") => "no DMARC policy: docomo marks this domain's mail as spoofed".to_string(),
        (false, _) => format!("no aligned DKIM signature (d={domain}): mail forwarded without SPF fails DMARC and docomo marks it as spoofed"),
        (true, "none") => "DMARC passes on DKIM; p=none lets spoofed mail in this domain's name reach docomo users (marked): consider p=quarantine".to_string(),
        (true, p) => format!("DMARC passes on DKIM; p={p} keeps spoofed mail away"),
    };
    report.add("docomo", pass, detail);
}

/// Whether the reputation guard has tripped for the domain, from `GET /v1/senders/{domain}`.
async fn check_guard(api: &Client, domain: &str, report: &mut Report) {
    match api.call("GET", &format!("/v1/senders/{domain}"), None).await {
        Ok(sender) => {
            let status = sender["status"].as_str().unwrap_or("ok").to_string();
            let reasons: Vec<&str> =
                sender["findings"].as_array().into_iter().flatten().filter_map(|f| f["reason"].as_str()).collect();
            let detail = match reasons.is_empty() {
                true => format!("reputation {status}: rates within [reputation]'s thresholds"),
                false => format!("reputation {status}: {}", reasons.join("; ")),
            };
            report.add("guard", status != "pause", detail);
        }
        Err(CliError::Api { status: 404, .. }) => report.add("guard", true, "no outcomes counted for this domain yet"),
        Err(e) => report.skip("guard", format!("not checked: {e}")),
    }
}

async fn check_reverse(dns: &Dns, pool: &[(IpAddr, String)], report: &mut Report) {
    for (ip, helo) in pool {
        let names = match dns.ptr(*ip).await {
            Ok(n) if !n.is_empty() => n,
            Ok(_) => {
                report.add("ptr", false, format!("{ip}: no PTR record"));
                continue;
            }
            Err(e) => {
                report.add("ptr", false, format!("{ip}: {e}"));
                continue;
            }
        };
        let mut confirmed = Vec::new();
        for n in &names {
            let forward = match ip {
                IpAddr::V4(v4) => dns.ipv4(n).await.map(|a| a.contains(v4)).unwrap_or(false),
                IpAddr::V6(_) => false,
            };
            if forward {
                confirmed.push(n.clone());
            }
        }
        if confirmed.is_empty() {
            report.add("ptr", false, format!("{ip}: PTR {} does not resolve back to {ip}", names.join(", ")));
        } else if !confirmed.contains(helo) {
            report.add(
                "ptr",
                false,
                format!("{ip}: PTR {} resolves back, but EHLO name is {helo}", confirmed.join(", ")),
            );
        } else {
            report.add("ptr", true, format!("{ip}: PTR {helo} resolves back to {ip} and is the EHLO name"));
        }
    }
}
