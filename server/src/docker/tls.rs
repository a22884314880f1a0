//! A TCP engine's TLS as `docker --tlsverify` has it: the engine's certificate checked against
//! the CA given, and that CA alone (the system's roots would let any public CA's certificate
//! for the engine's name pass), and Lookout's own certificate shown to the engine.

use std::sync::Arc;

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::address::Tls;

/// The TLS settings of `tls`'s files, or what is wrong with them.
pub fn client_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    let unreadable =
        |what: &std::path::Path, e: &dyn std::fmt::Display| format!("{}: {e}", what.display());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&tls.ca).map_err(|e| unreadable(&tls.ca, &e))? {
        let cert = cert.map_err(|e| unreadable(&tls.ca, &e))?;
        roots.add(cert).map_err(|e| unreadable(&tls.ca, &e))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate", tls.ca.display()));
    }
    let chain = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| unreadable(&tls.cert, &e))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", tls.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| unreadable(&tls.key, &e))?;
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| unreadable(&tls.key, &e))
}

/// A client of the engine at `host:port` over TLS; it connects on its first request.
pub fn connect(host: &str, port: u16, tls: &Tls, timeout: u64) -> Result<Docker, String> {
    let config = client_config(tls)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnector::from((http, config));
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_max_idle_per_host(0);
    let client = Arc::new(builder.build(https));
    let transport = move |request: BollardRequest| {
        let client = Arc::clone(&client);
        async move {
            client
                .request(request)
                .await
                .map_err(bollard::errors::Error::from)
        }
    };
    let address = format!("https://{host}:{port}");
    Docker::connect_with_custom_transport(
        transport,
        Some(address),
        timeout,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())
}
