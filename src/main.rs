//! The `docusign-gateway` command: run the gateway, the demo, or the fake.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use docusign_gateway::config::Config;
use docusign_gateway::fake::{FakeConfig, FakeDocuSign};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Run the gateway with the built-in fake DocuSign on loopback.
    Demo {
        /// Where the demo gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Run only the fake DocuSign (account server and REST hosts).
    FakeDocusign {
        /// Address of the account server (/oauth/*).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Address of a REST host; repeat for several.
        #[arg(long = "rest-host", default_values = ["127.0.0.2:9001", "127.0.0.3:9002"])]
        rest_hosts: Vec<SocketAddr>,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    docusign_gateway::logging::init();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => Config::load(&cli.config, std::env::vars())
            .map_err(|e| e.to_string())
            .and_then(|cfg| docusign_gateway::server::run(cfg, None)),
        Command::Demo { listen } => docusign_gateway::demo::run(listen),
        Command::FakeDocusign {
            listen,
            rest_hosts,
            client_id,
            client_secret,
            redirect_uris,
            access_token_ttl_secs,
        } => {
            let mut cfg = FakeConfig::demo_defaults();
            cfg.account_server = listen;
            cfg.rest_hosts = rest_hosts;
            cfg.client_id = client_id;
            cfg.client_secret = client_secret;
            cfg.redirect_uris = redirect_uris;
            cfg.access_token_ttl = Duration::from_secs(access_token_ttl_secs);
            run_fake(cfg)
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
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())
    })
}
