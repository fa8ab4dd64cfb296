//! TLS for the scheduler's listeners: an acceptor from a PEM certificate chain and key (rustls
//! with ring, TLS 1.2 and 1.3). The admin API and the public listener serve HTTPS with one.

use std::sync::Arc;

use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    },
};

/// The acceptor for `cert` and `key` (config keys `<section>.tls_cert` and `.tls_key`).
pub fn acceptor(section: &str, cert: &str, key: &str) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("config key `{section}.tls_cert` = {cert:?}: {e}"))?;
    if chain.is_empty() {
        anyhow::bail!("config key `{section}.tls_cert` = {cert:?}: no certificate in the file");
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("config key `{section}.tls_key` = {key:?}: {e}"))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| anyhow::anyhow!("config key `{section}.tls_key` = {key:?}: does not fit the certificate: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor a listener's `tls_cert` and `tls_key` ask for, if any.
pub fn optional(section: &str, cert: Option<&String>, key: Option<&String>) -> anyhow::Result<Option<TlsAcceptor>> {
    match (cert, key) {
        (Some(cert), Some(key)) => acceptor(section, cert, key).map(Some),
        _ => Ok(None),
    }
}
