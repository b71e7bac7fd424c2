//! The `docusign-gateway` command: run the gateway, check a configuration,
//! probe health, or run the demo or the fake DocuSign (these two only with the
//! `fake` feature, on by default; production builds leave it out).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use docusign_gateway::auth::grant;
#[cfg(feature = "fake")]
use docusign_gateway::config::LogFormat;
use docusign_gateway::config::{self, Config, RawConfig};
use docusign_gateway::crypto::api_token::ApiTokens;
use docusign_gateway::ops::audit::{self, Event};
use docusign_gateway::ops::logging;
use docusign_gateway::server::tls;
use docusign_gateway::util::time::now_unix;
#[cfg(feature = "fake")]
use fake_docusign::{ConnectListener, FakeConfig, FakeDocuSign};

/// jemalloc, as pingora's examples use: cheaper than glibc malloc for the
/// many short-lived allocations of proxying (see `docs/src/performance.md`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`_RJEM_MALLOC_CONF` in the
/// environment still applies after them). `tcache_max`: pingora gives every upstream
/// answer a 64 KiB body buffer; jemalloc's thread caches keep blocks up to
/// 32 KiB by default, so each of those went to the shared arena and back
/// (about 4,000 instructions a request, measured with callgrind:
/// `docs/src/performance.md`). Cached up to 128 KiB, they are reused per thread, at the
/// cost of a few such blocks kept per thread.
#[cfg(not(target_env = "msvc"))]
#[export_name = "_rjem_malloc_conf"]
pub static JEMALLOC_CONF: &[u8; 18] = b"tcache_max:131072\0";

#[derive(Parser)]
#[command(
    name = "docusign-gateway",
    version,
    about = "Authentication gateway for the DocuSign eSignature REST API"
)]
struct Cli {
    /// Configuration file (TOML); DSGW_<SECTION>_<KEY> variables override it.
    #[arg(long, short, default_value = "config/gateway.toml", global = true)]
    config: PathBuf,
    /// Take the listening sockets over from a running gateway (which is sent
    /// SIGQUIT), for a zero-downtime upgrade.
    #[arg(long)]
    upgrade: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the configuration file and DSGW_* variables exactly as
    /// start-up does, and print the effective configuration, secrets masked.
    Check,
    /// Exit 0 when the gateway of this configuration answers /healthz (for
    /// container health checks).
    Health {
        /// Address to probe instead of server.listen.
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Print a gateway token for a `[[service]]` (service mode, the JWT
    /// grant): back-ends send it as `Authorization: Bearer` to call
    /// `/restapi/...` as the service's DocuSign user.
    Token {
        /// The `[[service]]` name.
        #[arg(long)]
        service: String,
        /// Lifetime; default `session.api_token_ttl_secs`.
        #[arg(long)]
        ttl_secs: Option<u64>,
        /// The token's name (1 to 64 of A-Z a-z 0-9 space _ . -).
        #[arg(long)]
        name: Option<String>,
        /// Only this account (repeatable).
        #[arg(long = "account")]
        accounts: Vec<String>,
        /// Only this method (repeatable): GET, HEAD, POST, PUT, PATCH, DELETE.
        #[arg(long = "method")]
        methods: Vec<String>,
        /// Only paths matching this pattern (repeatable; `*` one segment,
        /// `**` the rest).
        #[arg(long = "path")]
        paths: Vec<String>,
    },
    /// DocuSign Connect webhooks kept in the Redis store: list the dead
    /// messages of a `[[webhook]]`, or queue them again.
    Webhooks {
        #[command(subcommand)]
        action: WebhooksAction,
    },
    /// Run the gateway with the built-in fake DocuSign on loopback.
    #[cfg(feature = "fake")]
    Demo {
        /// Where the demo gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Run only the fake DocuSign (account server, REST hosts, Admin and
    /// api.docusign.com hosts, Connect sender).
    #[cfg(feature = "fake")]
    FakeDocusign {
        /// Address of the account server (/oauth/*).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Address of a REST host; repeat for several.
        #[arg(long = "rest-host", default_values = ["127.0.0.2:9001", "127.0.0.3:9002"])]
        rest_hosts: Vec<SocketAddr>,
        /// Address of the Admin API host (/management/...).
        #[arg(long, default_value = "127.0.0.4:9003")]
        admin_host: SocketAddr,
        /// Address of the api.docusign.com host (/v1/...).
        #[arg(long, default_value = "127.0.0.5:9004")]
        platform_host: SocketAddr,
        #[arg(long, default_value = "demo-integration-key")]
        client_id: String,
        #[arg(
            long,
            default_value = "demo-client-secret",
            env = "FAKE_DOCUSIGN_CLIENT_SECRET"
        )]
        client_secret: String,
        /// A registered redirect URI; repeat for several.
        #[arg(long = "redirect-uri", default_values = ["http://127.0.0.1:8080/auth/docusign/callback"])]
        redirect_uris: Vec<String>,
        /// Lifetime of the access tokens it issues.
        #[arg(long, default_value_t = 28800)]
        access_token_ttl_secs: u64,
        /// A Connect listener (http or https): each envelope created (and
        /// each POST /_fake/connect/send) is posted there as a Connect 2.0
        /// JSON event, retried like DocuSign (5 attempts).
        #[arg(long, value_name = "URL")]
        connect_url: Option<String>,
        /// The environment variable holding the listener's HMAC keys,
        /// comma-separated (one X-DocuSign-Signature-N header each); without
        /// it messages go unsigned.
        #[arg(long, value_name = "VAR", requires = "connect_url")]
        connect_hmac_keys_env: Option<String>,
    },
}

#[derive(Subcommand)]
enum WebhooksAction {
    /// List the dead messages (retried for retry_for_secs, kept 7 days),
    /// one JSON object per line, oldest first; never the body.
    Dead {
        /// The `[[webhook]]` name.
        name: String,
    },
    /// Queue dead messages again (all of them, or the one with this id):
    /// delivered with their event id, retried for retry_for_secs anew.
    Replay {
        /// The `[[webhook]]` name.
        name: String,
        /// The event id (X-Dsgw-Event-Id) of one dead message.
        id: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => load(&cli.config).and_then(|cfg| {
            logging::init(cfg.log.format, &cfg.log.level);
            docusign_gateway::server::run(cfg, cli.upgrade).map_err(|e| e.to_string())
        }),
        Command::Check => check(&cli.config),
        Command::Webhooks { action } => webhooks(&cli.config, action),
        Command::Health { addr } => health(&cli.config, addr),
        Command::Token {
            service,
            ttl_secs,
            name,
            accounts,
            methods,
            paths,
        } => {
            let scope = TokenArgs {
                ttl_secs,
                name,
                accounts,
                methods,
                paths,
            };
            match token(&cli.config, &service, scope) {
                Ok(()) => return ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("docusign-gateway: {message}");
                    return ExitCode::from(2);
                }
            }
        }
        #[cfg(feature = "fake")]
        Command::Demo { listen } => {
            logging::init(LogFormat::Text, "info");
            docusign_gateway::server::demo::run(listen)
        }
        #[cfg(feature = "fake")]
        Command::FakeDocusign {
            listen,
            rest_hosts,
            admin_host,
            platform_host,
            client_id,
            client_secret,
            redirect_uris,
            access_token_ttl_secs,
            connect_url,
            connect_hmac_keys_env,
        } => {
            logging::init(LogFormat::Text, "info");
            let mut cfg = FakeConfig::demo_defaults();
            cfg.account_server = listen;
            cfg.rest_hosts = rest_hosts;
            cfg.admin_host = admin_host;
            cfg.platform_host = platform_host;
            cfg.client_id = client_id;
            cfg.client_secret = client_secret;
            cfg.redirect_uris = redirect_uris;
            cfg.access_token_ttl = Duration::from_secs(access_token_ttl_secs);
            connect_listener(connect_url, connect_hmac_keys_env.as_deref()).and_then(|listener| {
                cfg.connect = listener.into_iter().collect();
                run_fake(cfg)
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("docusign-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<Config, String> {
    Config::load(path, std::env::vars()).map_err(|e| e.to_string())
}

/// What `token` was asked for, besides the service.
struct TokenArgs {
    ttl_secs: Option<u64>,
    name: Option<String>,
    accounts: Vec<String>,
    methods: Vec<String>,
    paths: Vec<String>,
}

/// A scope error as the `token` command's flags name the field.
fn as_flag(message: &str) -> String {
    let flags = [
        ("ttl_secs:", "--ttl-secs:"),
        ("name:", "--name:"),
        ("accounts:", "--account:"),
        ("methods:", "--method:"),
        ("paths:", "--path:"),
    ];
    for (field, flag) in flags {
        if let Some(rest) = message.strip_prefix(field) {
            return format!("{flag}{rest}");
        }
    }
    message.to_string()
}

/// Longest life of a service token the `token` command mints.
const MAX_SERVICE_TOKEN_TTL_SECS: u64 = 10 * 366 * 24 * 3600;

/// One service token on stdout; the rules of `POST /auth/token`'s body.
fn token(path: &Path, service: &str, args: TokenArgs) -> Result<(), String> {
    let cfg = load(path)?;
    let svc = cfg
        .service(service)
        .ok_or_else(|| format!("no [[service]] named {service:?} in {}", path.display()))?;
    let mut fields = serde_json::Map::new();
    if let Some(t) = args.ttl_secs {
        fields.insert("ttl_secs".into(), t.into());
    }
    if let Some(n) = args.name {
        fields.insert("name".into(), n.into());
    }
    for (key, list) in [
        ("accounts", args.accounts),
        ("methods", args.methods),
        ("paths", args.paths),
    ] {
        if !list.is_empty() {
            fields.insert(key.into(), list.into());
        }
    }
    let grant = grant::for_service(&fields, &cfg.access, MAX_SERVICE_TOKEN_TTL_SECS)
        .map_err(|e| as_flag(&e))?;
    let tokens = ApiTokens::new(
        cfg.session.secret.expose().as_bytes(),
        &cfg.public_link(""),
        cfg.session.api_token_ttl.as_secs(),
    );
    let minted = tokens.mint_service(&svc.name, &svc.user_id, now_unix(), &grant);
    let claims = &minted.claims;
    logging::init(cfg.log.format, "warn");
    audit::set_enabled(cfg.log.audit);
    audit::emit(
        Event::new("token_minted")
            .with("service", svc.name.as_str())
            .with("user", svc.user_id.as_str())
            .with("token_id", claims.jti.clone())
            .with("name", claims.name.clone())
            .with(
                "scope",
                serde_json::to_value(claims.scope.clone().unwrap_or_default()).unwrap_or_default(),
            )
            .with("expires_at", claims.exp)
            .with("by", "command"),
    );
    logging::flush();
    println!("{}", minted.token);
    Ok(())
}

/// `webhooks dead` / `webhooks replay`.
fn webhooks(path: &Path, action: WebhooksAction) -> Result<(), String> {
    use docusign_gateway::webhook::admin;
    let cfg = load(path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        match action {
            WebhooksAction::Dead { name } => {
                for dead in admin::dead(&cfg, &name).await? {
                    println!(
                        "{}",
                        serde_json::to_string(&dead).map_err(|e| e.to_string())?
                    );
                }
                Ok(())
            }
            WebhooksAction::Replay { name, id } => {
                let n = admin::replay(&cfg, &name, id.as_deref()).await?;
                if n == 0 && id.is_some() {
                    return Err(format!("webhook {name}: no dead message with that id"));
                }
                println!("{n} message(s) of webhook {name} queued again");
                Ok(())
            }
        }
    })
}

/// Exactly start-up's validation, then the effective configuration.
fn check(path: &Path) -> Result<(), String> {
    let text = config::read_file(path).map_err(|e| e.to_string())?;
    let raw = RawConfig::parse(&text, std::env::vars()).map_err(|e| e.to_string())?;
    let cfg = Config::from_raw(raw.clone()).map_err(|e| e.to_string())?;
    docusign_gateway::server::check_upgrade_dir(&cfg.server.upgrade_sock)
        .map_err(|e| e.to_string())?;
    let tls = match &cfg.server.tls {
        Some(files) => Some(tls::check_tls(files).map_err(|e| e.to_string())?),
        None => None,
    };
    let mode = std::fs::metadata(path).ok().map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode()
    });
    for warning in config::warnings::warnings(&cfg, &text, mode, config::warnings::machine_memory())
    {
        eprintln!("docusign-gateway: {warning}");
    }
    println!("# {}: valid", path.display());
    print_tls(&cfg, tls.as_ref());
    println!("# effective configuration (file + DSGW_* variables + defaults), secrets masked");
    println!("# OAuth server: {}", cfg.docusign.auth_server);
    println!("# redirect URI to register: {}", cfg.redirect_uri());
    println!("# {}", cfg.access.describe());
    for line in cfg.docusign.apis.describe() {
        println!("# {line}");
    }
    for svc in &cfg.services {
        println!(
            "# service {}: RSA private key loaded, user {}, consent URL {}",
            svc.name,
            svc.user_id,
            cfg.public_link(&format!("/auth/consent?service={}", svc.name))
        );
    }
    for hook in &cfg.webhooks {
        println!(
            "# webhook {}: Connect posts to {}, delivered to {}; {} HMAC key(s) from {}",
            hook.name,
            cfg.public_link(&format!(
                "{}{}",
                docusign_gateway::util::paths::WEBHOOKS_PREFIX,
                hook.name
            )),
            hook.forward_to,
            hook.hmac_keys.len(),
            hook.hmac_keys_env,
        );
    }
    print!("{}", raw.masked_toml());
    Ok(())
}

/// The certificate in use (never the key), and TLS warnings.
fn print_tls(cfg: &Config, tls: Option<&tls::CertInfo>) {
    const SOON_SECS: i64 = 14 * 24 * 3600;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match tls {
        Some(c) => {
            println!("# TLS on server.listen: certificate subject {}", c.subject);
            println!("# TLS names: {}", c.names.join(", "));
            println!(
                "# TLS certificate expires at {} (Unix), in {} days; chain of {}",
                c.not_after,
                (c.not_after - now) / 86_400,
                c.chain_len
            );
            if c.not_after - now < SOON_SECS {
                eprintln!("warning: server.tls_cert_file expires within 14 days; renew it and hand over with --upgrade");
            }
        }
        None if cfg.server.public_url.scheme() == "https" && cfg.session.secure_cookie => {
            eprintln!(
                "warning: server.public_url is https:// but server.tls_cert_file is unset: \
                 expected behind a TLS terminator (the Secure cookie needs HTTPS in front)"
            );
        }
        None => {}
    }
}

fn health(path: &Path, addr: Option<SocketAddr>) -> Result<(), String> {
    let cfg = load(path);
    let tls = cfg.as_ref().is_ok_and(|c| c.server.tls.is_some());
    let addr = match (addr, cfg) {
        (Some(a), _) => a,
        (None, cfg) => cfg?.server.listen,
    };
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    if tls {
        return health_over_tls(addr);
    }
    let timeout = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "{addr}/healthz answered {}",
            String::from_utf8_lossy(&head)
        ))
    }
}

/// The liveness probe of an HTTPS listener. It runs on the gateway's own
/// host against its loopback address, where the certificate's names cannot
/// match, and sends nothing secret: the certificate is not verified.
fn health_over_tls(addr: SocketAddr) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        let r = client
            .get(format!("https://{addr}/healthz"))
            .send()
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        match r.status().as_u16() {
            200 => Ok(()),
            s => Err(format!("{addr}/healthz answered {s}")),
        }
    })
}

/// The `fake-docusign` command's Connect listener: `url`, with the keys of
/// the variable `keys_env` (comma-separated; never on the command line).
#[cfg(feature = "fake")]
fn connect_listener(
    url: Option<String>,
    keys_env: Option<&str>,
) -> Result<Option<ConnectListener>, String> {
    let Some(url) = url else {
        return Ok(None);
    };
    let keys = match keys_env {
        Some(var) => {
            let value = std::env::var(var).map_err(|_| {
                format!("--connect-hmac-keys-env: the environment variable {var} is not set")
            })?;
            let keys: Vec<String> = docusign_gateway::config::split_hmac_keys(&value)
                .map(str::to_owned)
                .collect();
            if keys.is_empty() {
                return Err(format!(
                    "--connect-hmac-keys-env: the environment variable {var} holds no key"
                ));
            }
            keys
        }
        None => Vec::new(),
    };
    Ok(Some(ConnectListener::new(url, keys)))
}

#[cfg(feature = "fake")]
fn run_fake(cfg: FakeConfig) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let fake = FakeDocuSign::start(cfg)
            .await
            .map_err(|e| format!("cannot start the fake DocuSign: {e}"))?;
        println!(
            "fake DocuSign account server: {}",
            fake.account_server_url()
        );
        for i in 0..fake.config().rest_hosts.len() {
            println!("fake DocuSign REST host {i}: {}", fake.rest_host_url(i));
        }
        println!("fake DocuSign Admin API: {}", fake.admin_api_url());
        println!(
            "fake DocuSign api.docusign.com: {}",
            fake.platform_api_url()
        );
        for listener in &fake.config().connect {
            println!(
                "fake DocuSign Connect: envelope events to {}, {} HMAC key(s)",
                listener.url,
                listener.hmac_keys.len()
            );
        }
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())
    })
}
