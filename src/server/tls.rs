//! HTTPS on the gateway's own listener: the certificate chain and key of
//! `server.tls_cert_file` / `server.tls_key_file`, checked once at start
//! (and by `check`) so that pingora, which panics on a bad file, never sees
//! one: both readable PEM, the key the certificate's, the certificate valid
//! now. The listener speaks TLS 1.2 and 1.3 with HTTP/2 and HTTP/1.1 offered
//! through ALPN.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use pingora::listeners::tls::TlsSettings;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::config::{ConfigError, TlsFiles};
use crate::util::time::now_unix;

const CERT_KEY: &str = "server.tls_cert_file";
const KEY_KEY: &str = "server.tls_key_file";

/// What `check` prints about the certificate (never anything of the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
    /// Certificates in the chain file.
    pub chain_len: usize,
}

/// Reads and checks both files; the certificate's description.
pub fn check_tls(files: &TlsFiles) -> Result<CertInfo, ConfigError> {
    let chain = read_chain(&files.cert_file)?;
    let key = read_key(&files.key_file)?;
    let info = describe(&chain)?;
    if info.not_after <= now_unix() as i64 {
        return Err(ConfigError::new(
            CERT_KEY,
            "the certificate has expired; expected a currently valid certificate",
        ));
    }
    key_matches(&chain[0], &key)?;
    Ok(info)
}

/// pingora's TLS settings for a checked pair.
pub fn settings(files: &TlsFiles) -> Result<TlsSettings, ConfigError> {
    let path = |p: &Path| p.to_str().map(str::to_string);
    let (Some(cert), Some(key)) = (path(&files.cert_file), path(&files.key_file)) else {
        return Err(ConfigError::new(CERT_KEY, "expected UTF-8 file paths"));
    };
    let mut settings = TlsSettings::intermediate(&cert, &key)
        .map_err(|e| ConfigError::new(CERT_KEY, format!("cannot be used for TLS: {e}")))?;
    settings.enable_h2();
    Ok(settings)
}

fn open(key: &str, path: &Path) -> Result<BufReader<File>, ConfigError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| ConfigError::new(key, format!("cannot read the file: {}", e.kind())))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let chain: Vec<_> = rustls_pemfile::certs(&mut open(CERT_KEY, path)?)
        .collect::<Result<_, _>>()
        .map_err(|_| ConfigError::new(CERT_KEY, "expected PEM certificates"))?;
    if chain.is_empty() {
        return Err(ConfigError::new(
            CERT_KEY,
            "no certificate found; expected PEM (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    // The error never says anything about the key's content.
    rustls_pemfile::private_key(&mut open(KEY_KEY, path)?)
        .ok()
        .flatten()
        .ok_or_else(|| {
            ConfigError::new(
                KEY_KEY,
                "no private key found; expected a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            )
        })
}

fn describe(chain: &[CertificateDer<'_>]) -> Result<CertInfo, ConfigError> {
    let (_, cert) = X509Certificate::from_der(chain[0].as_ref())
        .map_err(|_| ConfigError::new(CERT_KEY, "the certificate cannot be parsed (X.509)"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(ip) => names.push(ip_text(ip)),
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        names,
        not_after: cert.validity().not_after.timestamp(),
        chain_len: chain.len(),
    })
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => "?".into(),
    }
}

/// The key must be the one the (leaf) certificate names.
fn key_matches(leaf: &CertificateDer<'_>, key: &PrivateKeyDer<'_>) -> Result<(), ConfigError> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key).map_err(|_| {
        ConfigError::new(
            KEY_KEY,
            "unsupported key type; expected RSA, ECDSA or Ed25519",
        )
    })?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|_| ConfigError::new(CERT_KEY, "the certificate cannot be parsed (X.509)"))?;
    match signing.public_key() {
        Some(spki) if spki.as_ref() == cert.public_key().raw => Ok(()),
        _ => Err(ConfigError::new(
            KEY_KEY,
            "the key does not match the certificate in server.tls_cert_file",
        )),
    }
}

#[cfg(test)]
mod tests;
