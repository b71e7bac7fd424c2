//! `[server]`: where the gateway listens and how it is reached.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::error::{ConfigError, Origins};
use super::range;
use super::raw::RawServer;
use super::urls::parse_url;

/// `server.client_read_buffer_bytes` by default: none. A client connection
/// is read straight into pingora's HTTP buffers. pingora's own default, a
/// 64 KiB buffer, is a zeroed allocation per new connection, which jemalloc
/// zeroes by handing the pages back to the kernel (`madvise`, a TLB
/// shootdown, page faults after): about a fifth of the gateway's CPU with a
/// connection per request (`docs/src/performance.md`).
pub const DEFAULT_CLIENT_READ_BUFFER: usize = 0;

/// `server.max_header_bytes` by default: a DocuSign request's head (a
/// cookie or bearer token and a few headers) is about 2 KiB; nginx keeps a
/// head within 32 KiB by default, Envoy within 60 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How clients reach the gateway, without a trailing slash.
    pub public_url: Url,
    pub threads: usize,
    /// Tasks accepting connections on the listening socket (pingora's
    /// `listener_tasks_per_fd`).
    pub listener_tasks: usize,
    /// Idle connections to REST hosts kept for reuse, at most (pingora's
    /// `upstream_keepalive_pool_size`).
    pub upstream_keepalive_pool: usize,
    /// Bytes of the buffer each client connection is read through (pingora's
    /// L4 read buffer); 0 reads straight into the HTTP parser's buffers.
    pub client_read_buffer_bytes: usize,
    /// Where Prometheus metrics are served; none when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// How long in-flight requests get to finish after SIGTERM or SIGQUIT.
    pub grace_period: Duration,
    /// The socket through which listening sockets are handed to a new
    /// process on a zero-downtime upgrade. Its directory must be writable by
    /// the gateway's user only (checked, or created 0700, at start).
    pub upgrade_sock: PathBuf,
    /// An HTTP/1.1 connection with no request in progress is closed after it.
    pub idle_timeout: Duration,
    /// A request head must arrive whole within it of its first byte (else 408).
    pub header_timeout: Duration,
    /// Open client connections at most; at the cap idle ones are closed first.
    pub max_connections: usize,
    /// Bytes of one request head (request line and headers) at most; past
    /// it 431 and the connection is closed. HTTP/2: the header list size.
    pub max_header_bytes: usize,
    /// Origins besides `public_url`'s from which cookie-authenticated
    /// unsafe requests (POST, PUT, PATCH, DELETE) are accepted.
    pub allowed_origins: Vec<url::Origin>,
    /// HTTPS on `listen` (certificate chain and key, PEM); plain HTTP when
    /// unset. The files themselves are checked at start (`server::tls`).
    pub tls: Option<TlsFiles>,
}

/// `server.tls_cert_file` and `server.tls_key_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Both TLS files or neither.
fn tls_files(cert: Option<String>, key: Option<String>) -> Result<Option<TlsFiles>, ConfigError> {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    match (set(cert), set(key)) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert_file: cert.into(),
            key_file: key.into(),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            "server.tls_key_file",
            "missing: server.tls_cert_file is set, and TLS needs both the certificate and its key",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "server.tls_cert_file",
            "missing: server.tls_key_file is set, and TLS needs both the certificate and its key",
        )),
    }
}

/// Where the upgrade socket goes when `server.upgrade_sock` is unset: in a
/// directory of its own inside one only the gateway's user can enter.
/// `$XDG_RUNTIME_DIR/docusign-gateway/upgrade.sock` when `XDG_RUNTIME_DIR`
/// is set, else `$HOME/.local/state/docusign-gateway/upgrade.sock` when
/// `HOME` is set, else `/run/docusign-gateway/upgrade.sock`. `var` reads the
/// environment.
pub fn default_upgrade_sock(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    let absolute = |name: &str| {
        var(name)
            .filter(|v| v.starts_with('/') && !v.trim_end_matches('/').is_empty())
            .map(PathBuf::from)
    };
    let base = if let Some(dir) = absolute("XDG_RUNTIME_DIR") {
        dir
    } else if let Some(home) = absolute("HOME") {
        home.join(".local/state")
    } else {
        PathBuf::from("/run")
    };
    base.join("docusign-gateway").join("upgrade.sock")
}

pub(super) fn validate(raw: RawServer, origins: &Origins) -> Result<ServerConfig, ConfigError> {
    let listen = socket_addr("server.listen", &raw.listen, "127.0.0.1:8080", origins)?;
    let public_url = parse_url("server.public_url", &raw.public_url, origins)?;
    if !matches!(public_url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            "server.public_url",
            "expected an http:// or https:// URL",
        ));
    }
    let metrics_listen = match &raw.metrics_listen {
        None => None,
        Some(m) => Some(socket_addr(
            "server.metrics_listen",
            m,
            "127.0.0.1:9090",
            origins,
        )?),
    };
    if metrics_listen == Some(listen) {
        return Err(ConfigError::new(
            "server.metrics_listen",
            "must differ from server.listen",
        ));
    }
    let grace_period = range::secs("server.grace_period_secs", raw.grace_period_secs, 0..=3600)?;
    let upgrade_sock = raw.upgrade_sock.unwrap_or_else(|| {
        default_upgrade_sock(|name| std::env::var(name).ok())
            .display()
            .to_string()
    });
    if !upgrade_sock.starts_with('/') || upgrade_sock.ends_with('/') {
        return Err(ConfigError::new(
            "server.upgrade_sock",
            "expected an absolute path for the upgrade socket",
        ));
    }
    Ok(ServerConfig {
        listen,
        public_url,
        threads: range::count("server.threads", raw.threads, 1..=1024)?,
        listener_tasks: range::count("server.listener_tasks", raw.listener_tasks, 1..=64)?,
        upstream_keepalive_pool: range::count(
            "server.upstream_keepalive_pool",
            raw.upstream_keepalive_pool,
            1..=100_000,
        )?,
        client_read_buffer_bytes: range::count(
            "server.client_read_buffer_bytes",
            raw.client_read_buffer_bytes,
            0..=1_048_576,
        )?,
        metrics_listen,
        grace_period,
        upgrade_sock: upgrade_sock.into(),
        idle_timeout: range::secs("server.idle_timeout_secs", raw.idle_timeout_secs, 1..=3600)?,
        header_timeout: range::secs(
            "server.header_timeout_secs",
            raw.header_timeout_secs,
            1..=600,
        )?,
        max_connections: range::count(
            "server.max_connections",
            raw.max_connections,
            1..=1_000_000,
        )?,
        max_header_bytes: range::count(
            "server.max_header_bytes",
            raw.max_header_bytes,
            1024..=1_048_576,
        )?,
        allowed_origins: allowed_origins(&raw.allowed_origins, origins)?,
        tls: tls_files(raw.tls_cert_file, raw.tls_key_file)?,
    })
}

/// `server.allowed_origins`: `scheme://host[:port]`, nothing more.
fn allowed_origins(list: &[String], origins: &Origins) -> Result<Vec<url::Origin>, ConfigError> {
    const KEY: &str = "server.allowed_origins";
    const EXPECTED: &str =
        "expected origins such as \"https://app.example.com\" (scheme, host and port only)";
    list.iter()
        .map(|text| {
            let url = Url::parse(text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .filter(|u| u.path() == "/" && u.query().is_none() && u.username().is_empty())
                .filter(|_| !text.ends_with('/'));
            url.map(|u| u.origin())
                .ok_or_else(|| ConfigError::invalid(KEY, EXPECTED, text, origins))
        })
        .collect()
}

fn socket_addr(
    key: &str,
    text: &str,
    example: &str,
    origins: &Origins,
) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        let expected = format!("expected an IP address and port such as \"{example}\"");
        ConfigError::invalid(key, &expected, text, origins)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_upgrade_socket_defaults_to_a_private_directory() {
        let p = |pairs: &[(&str, &str)]| default_upgrade_sock(vars(pairs));
        assert_eq!(
            p(&[("XDG_RUNTIME_DIR", "/run/user/1000"), ("HOME", "/home/u")]),
            PathBuf::from("/run/user/1000/docusign-gateway/upgrade.sock")
        );
        assert_eq!(
            p(&[("HOME", "/home/u")]),
            PathBuf::from("/home/u/.local/state/docusign-gateway/upgrade.sock")
        );
        assert_eq!(
            p(&[("XDG_RUNTIME_DIR", "relative"), ("HOME", "/")]),
            PathBuf::from("/run/docusign-gateway/upgrade.sock")
        );
        assert_eq!(p(&[]), PathBuf::from("/run/docusign-gateway/upgrade.sock"));
        assert!(!p(&[]).starts_with("/tmp"));
    }

    #[test]
    fn a_listen_address_from_the_environment_is_not_echoed() {
        let mut origins = Origins::default();
        origins.set_by("server.listen".into(), "DSGW_SERVER_LISTEN".into());
        let raw = RawServer {
            listen: "secret-host-name".into(),
            ..RawServer::default()
        };
        let e = validate(raw.clone(), &origins).unwrap_err();
        assert_eq!(e.key, "server.listen");
        assert!(!e.to_string().contains("secret-host-name"), "{e}");
        let e = validate(raw, &Origins::default()).unwrap_err();
        assert!(
            e.to_string().contains("secret-host-name"),
            "from the file: {e}"
        );
    }
}
