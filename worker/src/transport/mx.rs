//! Direct delivery: each recipient domain's MX hosts in preference order (implicit MX when
//! there is none, RFC 7505 null MX refused), from the configured source addresses in turn,
//! each with its own EHLO name. STARTTLS is used whenever offered (encryption without
//! certificate checks, like Postfix's `may` level); where the destination's limits say
//! `require_tls`, STARTTLS is required and the certificate must chain to a trusted root (the
//! Mozilla roots, plus `smtp.mx_ca_file`) and name the MX host (Postfix's `verify`). Source addresses on a warm-up plan send at most their daily cap (counted
//! in Redis); past it the others take over, then `warmup.spill_pool`, else the message waits
//! for the next day. MX hosts that resolve only to internal addresses (loopback, private,
//! link-local, unique-local, multicast, unspecified) are not contacted unless
//! `smtp.mx_allow_networks` allows them; a domain with nothing else bounces with 5.4.4.
//! Connections are pooled per (MX host, source address) and closed with QUIT after the
//! destination's `messages_per_connection`; a pooled connection found dead on first use is
//! replaced at once, on the same host.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use lettre::transport::smtp::{
    client::{AsyncSmtpConnection, Certificate, TlsParameters},
    extension::ClientId,
};
use sluice_shared::{
    config::{Config, LimitsConfig, Providers, WarmupConfig},
    dns::{Dns, DnsError, MailHosts},
    metrics as m,
    netguard::AddressPolicy,
    redis::Pool as RedisPool,
    warmup::{self, Sender},
};
use tokio::net::TcpSocket;

use super::{
    Envelope, SendError, SmtpReply, Transport,
    mta_sts::{Mode, MtaSts},
    pool::{Close, IdlePool},
    session::{Outgoing, Session},
    smtp::connection_error,
};

struct Source {
    address: Option<IpAddr>,
    helo: ClientId,
    pool: String,
}

pub struct MxDelivery {
    dns: Dns,
    /// Per-address warm-up counters live in Redis, shared by every worker.
    redis: RedisPool,
    warmup: WarmupConfig,
    port: u16,
    sources: Vec<Source>,
    next_source: AtomicUsize,
    /// `smtp.mx_ca_file`, trusted beside the Mozilla roots when verifying.
    extra_root: Option<Certificate>,
    /// MTA-STS policies (`smtp.mta_sts`).
    sts: Option<MtaSts>,
    /// The addresses MX hosts may have: public ones, and `smtp.mx_allow_networks`.
    policy: AddressPolicy,
    /// Idle connections by (MX host, source index, verified TLS).
    pool: Arc<IdlePool<(String, usize, bool)>>,
    limits: LimitsConfig,
    providers: Providers,
    timeout: Duration,
}

impl MxDelivery {
    pub fn new(config: &Config, dns: Dns, redis: RedisPool) -> anyhow::Result<MxDelivery> {
        let (smtp, limits) = (&config.smtp, &config.limits);
        let mut sources: Vec<Source> = smtp
            .ip_pool
            .iter()
            .map(|s| Source { address: Some(s.address), helo: ClientId::Domain(s.helo.clone()), pool: s.pool.clone() })
            .collect();
        if sources.is_empty() {
            sources.push(Source {
                address: None,
                helo: ClientId::Domain(smtp.hello_name.clone()),
                pool: String::new(),
            });
        }
        let root_pem = match &smtp.mx_ca_file {
            Some(path) => {
                Some(std::fs::read(path).map_err(|e| anyhow::anyhow!("config key `smtp.mx_ca_file` = {path:?}: {e}"))?)
            }
            None => None,
        };
        let bad_root = |e: String| anyhow::anyhow!("config key `smtp.mx_ca_file` = {:?}: {e}", smtp.mx_ca_file);
        let extra_root =
            root_pem.as_deref().map(Certificate::from_pem).transpose().map_err(|e| bad_root(e.to_string()))?;
        let sts = smtp
            .mta_sts
            .then(|| MtaSts::new(dns.clone(), smtp.mx_address_policy(), root_pem.as_deref(), smtp.mta_sts_port))
            .transpose()
            .map_err(|e| bad_root(e.to_string()))?;
        Ok(MxDelivery {
            dns,
            extra_root,
            sts,
            redis,
            warmup: config.warmup.clone(),
            port: smtp.mx_port,
            sources,
            next_source: AtomicUsize::new(0),
            pool: IdlePool::new(smtp),
            policy: smtp.mx_address_policy(),
            limits: limits.clone(),
            providers: limits.providers(),
            timeout: smtp.timeout.get(),
        })
    }

    /// Says QUIT on every idle connection (shutdown).
    pub async fn close(&self) {
        self.pool.close_all().await;
    }

    /// The hosts to try for `domain`, or the permanent or temporary reason there are none.
    async fn hosts(&self, domain: &str) -> Result<Vec<String>, SendError> {
        match self.dns.mail_hosts(domain).await {
            Ok(MailHosts::Null) => {
                Err(SendError::Rejected(SmtpReply::parse(556, "5.1.10 the domain accepts no mail (null MX)")))
            }
            Ok(hosts) => Ok(hosts.hosts()),
            Err(DnsError::NoSuchDomain(d)) => {
                Err(SendError::Rejected(SmtpReply::parse(550, &format!("5.1.2 domain {d} does not exist"))))
            }
            Err(e) => Err(SendError::Connection(e.to_string())),
        }
    }

    /// The first address of `host` Sluice may contact; None when every address it has is
    /// internal (loopback, private...) and not in `smtp.mx_allow_networks`.
    async fn address(&self, host: &str) -> Result<Option<Ipv4Addr>, SendError> {
        let addresses = self.dns.ipv4(host).await.map_err(|e| SendError::Connection(e.to_string()))?;
        if addresses.is_empty() {
            return Err(SendError::Connection(format!("{host}: no address")));
        }
        Ok(addresses.into_iter().find(|a| self.policy.permits(IpAddr::V4(*a))))
    }

    async fn connect(
        &self,
        host: &str,
        ip: Ipv4Addr,
        source: &Source,
        require_tls: bool,
    ) -> Result<Session, SendError> {
        let socket = TcpSocket::new_v4().map_err(|e| SendError::Connection(e.to_string()))?;
        if let Some(src) = source.address {
            socket.bind(SocketAddr::new(src, 0)).map_err(|e| SendError::Connection(format!("bind {src}: {e}")))?;
        }
        let tcp = socket
            .connect(SocketAddr::new(IpAddr::V4(ip), self.port))
            .await
            .map_err(|e| SendError::Connection(format!("connect {host} ({ip}:{}): {e}", self.port)))?;
        tcp.set_nodelay(true).map_err(|e| SendError::Connection(e.to_string()))?;
        let mut conn =
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &source.helo).await.map_err(connection_error)?;
        if conn.can_starttls() {
            let params = self.tls_parameters(host, require_tls)?;
            conn.starttls(params, &source.helo).await.map_err(|e| match require_tls {
                true => SendError::Connection(format!("{host}: TLS with a verified certificate is required: {e}")),
                false => connection_error(e),
            })?;
        } else if require_tls {
            return Err(SendError::Connection(format!("{host} does not offer STARTTLS, and TLS is required")));
        }
        Session::start(conn, &source.helo).await.map_err(connection_error)
    }

    /// STARTTLS parameters for `host`: verified (chain to a trusted root, name = the MX host)
    /// when TLS is required, otherwise encryption without checks.
    fn tls_parameters(&self, host: &str, verify: bool) -> Result<TlsParameters, SendError> {
        let mut builder = TlsParameters::builder(host.to_string());
        builder = match (verify, &self.extra_root) {
            (true, Some(root)) => builder.add_root_certificate(root.clone()),
            (true, None) => builder,
            (false, _) => builder.dangerous_accept_invalid_certs(true).dangerous_accept_invalid_hostnames(true),
        };
        builder.build_rustls().map_err(|e| SendError::Connection(format!("TLS setup: {e}")))
    }

    /// The source address for the next message: the next in turn that is under its warm-up
    /// cap today, then (if `warmup.spill_pool` is set) one of that pool; otherwise the message
    /// waits for the next day.
    async fn pick_source(&self) -> Result<usize, SendError> {
        let n = self.sources.len();
        let start = self.next_source.fetch_add(1, Ordering::Relaxed);
        let spill = self.warmup.spill_pool.as_deref();
        let in_turn = (0..n).map(|k| (start + k) % n);
        let rotation = in_turn.clone().filter(|&i| Some(self.sources[i].pool.as_str()) != spill);
        let spills = in_turn.filter(|&i| Some(self.sources[i].pool.as_str()) == spill);
        let mut next_day = None;
        for i in rotation.chain(spills) {
            match self.take_warmup(i).await? {
                None => return Ok(i),
                Some(next) => next_day = Some(next),
            }
        }
        let until_ms = next_day.expect("a capped source gave its next day");
        metrics::counter!(m::WARMUP_HELD, "sender" => "ip-pool").increment(1);
        Err(SendError::Hold { until_ms, reason: "every source address is at its warm-up cap for today".into() })
    }

    /// Counts one message against the address's cap: None if it may send, else when the next
    /// day starts.
    async fn take_warmup(&self, i: usize) -> Result<Option<i64>, SendError> {
        let Some(address) = self.sources[i].address else { return Ok(None) };
        let Some(today) = self.warmup.today_ip(address, chrono::Utc::now()) else { return Ok(None) };
        let Some(cap) = today.cap else { return Ok(None) };
        let warmup_error = |e: String| SendError::Connection(format!("warm-up counter: {e}"));
        let mut conn = self.redis.get().await.map_err(|e| warmup_error(e.to_string()))?;
        let granted = warmup::take(&mut conn, Sender::Ip(address), &today, cap, 1)
            .await
            .map_err(|e| warmup_error(e.to_string()))?;
        Ok((granted == 0).then_some(today.next_day_ms))
    }

    async fn deliver(&self, from: &str, to: &str, to_domain: &str, message: &[u8]) -> Result<SmtpReply, SendError> {
        let hosts = self.hosts(to_domain).await?;
        // TLS and connection reuse follow the domain's own limits if configured, else its
        // provider's (by domain list, else by MX host), else the default.
        let limit = match self.limits.domains.contains_key(to_domain) {
            true => self.limits.for_domain(to_domain),
            false => self
                .providers
                .by_domain(to_domain)
                .or_else(|| self.providers.by_mx(&hosts))
                .map_or_else(|| self.limits.for_domain(to_domain), |p| p.limit),
        };
        // MTA-STS in enforce mode: only the hosts the policy lists, each over verified TLS.
        let enforced = match &self.sts {
            Some(sts) => sts.policy(to_domain).await.filter(|p| p.mode == Mode::Enforce),
            None => None,
        };
        let hosts: Vec<String> = match &enforced {
            Some(policy) => hosts.into_iter().filter(|h| policy.allows(h)).collect(),
            None => hosts,
        };
        if enforced.is_some() && hosts.is_empty() {
            return Err(SendError::Connection(format!("{to_domain}: no MX host matches its MTA-STS policy (enforce)")));
        }
        let verify = limit.require_tls || enforced.is_some();
        let s = self.pick_source().await?;
        let source = &self.sources[s];
        let mut last = None;
        let mut internal = false;
        for host in hosts {
            let ip = match self.address(&host).await {
                Ok(Some(ip)) => ip,
                Ok(None) => {
                    tracing::debug!(%host, domain = to_domain, "MX host resolves only to internal addresses; not contacted");
                    internal = true;
                    continue;
                }
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            // Verified and unverified connections never share a pool entry.
            let key = (host.clone(), s, verify);
            let connect = || self.connect(&host, ip, source, verify);
            let (pooled, answer) = match self.pool.send(&key, connect, Outgoing { from, to, message }).await {
                Ok(sent) => sent,
                // This host is down or refuses us: try the next one.
                Err(e) => {
                    tracing::debug!(%host, error = %e, "MX host unusable; trying the next");
                    last = Some(e);
                    continue;
                }
            };
            match pooled {
                Some(p) if p.sent >= limit.messages_per_connection && p.session.is_usable() => {
                    self.pool.close(p, Close::Limit)
                }
                Some(p) => self.pool.put(key, p),
                None => {}
            }
            // A reply or a break during the transaction is this message's answer: trying
            // another host could deliver it twice.
            return answer;
        }
        Err(match last {
            Some(e) => e,
            // A domain pointing its mail at our own or a private network: never deliverable.
            None if internal => SendError::Rejected(SmtpReply::parse(
                550,
                &format!(
                    "5.4.4 the MX hosts of {to_domain} resolve only to internal addresses (smtp.mx_allow_networks)"
                ),
            )),
            None => SendError::Connection(format!("{to_domain}: no mail hosts")),
        })
    }
}

impl Transport for MxDelivery {
    async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<SmtpReply, SendError> {
        let (from, to) = envelope.addresses()?;
        let domain = to.domain().to_ascii_lowercase();
        match tokio::time::timeout(self.timeout, self.deliver(from.as_ref(), to.as_ref(), &domain, message)).await {
            Ok(result) => result,
            Err(_) => {
                Err(SendError::Connection(format!("no answer from the MX hosts of {domain} within {:?}", self.timeout)))
            }
        }
    }
}
