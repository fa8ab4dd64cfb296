//! A tiny authoritative DNS server over UDP on 127.0.0.1, for tests of MX delivery, MX rollup
//! and `sluice doctor`. It answers from a fixed table; unknown names get NXDOMAIN.

use std::{
    net::{IpAddr, SocketAddr},
    str::FromStr,
    sync::Arc,
};

use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, MX, PTR, TXT},
    },
};
use tokio::net::UdpSocket;

/// One answer the server gives.
#[derive(Debug, Clone)]
pub enum Entry {
    Mx {
        name: String,
        preference: u16,
        exchange: String,
    },
    A {
        name: String,
        address: std::net::Ipv4Addr,
    },
    Txt {
        name: String,
        text: String,
    },
    /// PTR for an IPv4 address (the reverse name is made from it).
    Ptr {
        address: std::net::Ipv4Addr,
        target: String,
    },
}

impl Entry {
    fn record(&self) -> Record {
        let name = |n: &str| Name::from_str(&format!("{}.", n.trim_end_matches('.'))).expect("valid name");
        match self {
            Entry::Mx { name: n, preference, exchange } => {
                Record::from_rdata(name(n), 300, RData::MX(MX::new(*preference, name(exchange))))
            }
            Entry::A { name: n, address } => Record::from_rdata(name(n), 300, RData::A(A(*address))),
            Entry::Txt { name: n, text } => {
                // Long TXT values are split into 255-byte strings, as real zones do.
                let chunks: Vec<String> =
                    text.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
                Record::from_rdata(name(n), 300, RData::TXT(TXT::new(chunks)))
            }
            Entry::Ptr { address, target } => {
                let o = address.octets();
                let reverse = format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]);
                Record::from_rdata(name(&reverse), 300, RData::PTR(PTR(name(target))))
            }
        }
    }
}

/// A running server; stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    pub async fn start(entries: Vec<Entry>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS server");
        let addr = socket.local_addr().unwrap();
        let records: Arc<Vec<Record>> = Arc::new(entries.iter().map(Entry::record).collect());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else { continue };
                if let Some(reply) = answer(&records, &buf[..n]) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        DnsServer { addr, task }
    }

    /// The address as `[dns] nameservers` takes it.
    pub fn nameserver(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(records: &[Record], query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut reply = Message::new();
    reply.set_id(request.id()).set_message_type(MessageType::Response).set_op_code(request.op_code());
    reply.set_authoritative(true).set_recursion_desired(request.recursion_desired()).set_recursion_available(true);
    let mut known = false;
    for q in request.queries() {
        reply.add_query(q.clone());
        for r in records.iter().filter(|r| r.name().eq_case(q.name()) || r.name() == q.name()) {
            known = true;
            if q.query_type() == RecordType::ANY || r.record_type() == q.query_type() {
                reply.add_answer(r.clone());
            }
        }
    }
    reply.set_response_code(if known { ResponseCode::NoError } else { ResponseCode::NXDomain });
    reply.to_vec().ok()
}

/// Parses `127.0.0.2` style addresses in tests.
impl Entry {
    /// An MX record of preference 10.
    pub fn mx(name: &str, exchange: &str) -> Entry {
        Entry::Mx { name: name.into(), preference: 10, exchange: exchange.into() }
    }
    pub fn a(name: &str, address: &str) -> Entry {
        Entry::A { name: name.into(), address: ip(address) }
    }
    pub fn txt(name: &str, text: &str) -> Entry {
        Entry::Txt { name: name.into(), text: text.into() }
    }
}

pub fn ip(text: &str) -> std::net::Ipv4Addr {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4,
        _ => panic!("{text} is not an IPv4 address"),
    }
}
