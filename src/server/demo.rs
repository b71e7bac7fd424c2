//! `docusign-gateway demo`: the gateway and the built-in fake DocuSign on
//! loopback, with the embedded demo configuration. Needs no credentials.

use std::net::SocketAddr;

use fake_docusign::{FakeConfig, FakeDocuSign};

use crate::config::Config;
use crate::util::ids::random_id;

/// The demo configuration, embedded in the binary.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// Starts the fake, prints how to use the demo, then runs the gateway.
pub fn run(listen: SocketAddr) -> Result<(), String> {
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let public_url = format!("http://{host}:{}", listen.port());

    let mut env: Vec<(String, String)> = std::env::vars().collect();
    let probe = Config::from_toml_str(DEMO_CONFIG, env.clone()).map_err(|e| e.to_string())?;

    let mut fake_cfg = FakeConfig::demo_defaults();
    fake_cfg.client_id = probe.docusign.client_id.clone();
    fake_cfg.client_secret = probe.docusign.client_secret.expose().to_string();
    fake_cfg.redirect_uris = vec![format!("{public_url}{}", probe.docusign.callback_path)];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fake-docusign")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the fake DocuSign runtime: {e}"))?;
    let fake = runtime
        .block_on(FakeDocuSign::start(fake_cfg))
        .map_err(|e| format!("cannot start the fake DocuSign: {e}"))?;
    // Keep the fake's runtime alive for the life of the process.
    std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));

    env.push(("DSGW_SERVER_LISTEN".into(), listen.to_string()));
    env.push(("DSGW_SERVER_PUBLIC_URL".into(), public_url.clone()));
    env.push((
        "DSGW_DOCUSIGN_AUTH_SERVER".into(),
        fake.account_server_url(),
    ));
    env.push(("DSGW_SESSION_SECRET".into(), random_id()));
    // The fake's REST hosts listen on ephemeral ports; a pattern names its port.
    let rest_hosts: Vec<String> = (0..fake.rest_host_count())
        .map(|i| {
            fake.rest_host_url(i)
                .trim_start_matches("http://")
                .to_string()
        })
        .collect();
    env.push((
        "DSGW_DOCUSIGN_ALLOWED_API_HOSTS".into(),
        rest_hosts.join(","),
    ));
    env.push(("DSGW_DOCUSIGN_ADMIN_API_URL".into(), fake.admin_api_url()));
    env.push((
        "DSGW_DOCUSIGN_PLATFORM_API_URL".into(),
        fake.platform_api_url(),
    ));
    let cfg = Config::from_toml_str(DEMO_CONFIG, env).map_err(|e| e.to_string())?;

    println!("{}", hints(&public_url, &fake));
    super::run(cfg, false).map_err(|e| e.to_string())
}

fn hints(public_url: &str, fake: &FakeDocuSign) -> String {
    let mut accounts = String::new();
    for user in &fake.config().users {
        for a in &user.accounts {
            accounts.push_str(&format!(
                "    {}  {}  on {}{}\n",
                a.account_id,
                a.account_name,
                fake.rest_host_url(a.rest_host),
                if a.is_default { "  (default)" } else { "" }
            ));
        }
    }
    let first = fake
        .config()
        .users
        .first()
        .and_then(|u| u.accounts.first())
        .map(|a| a.account_id.clone())
        .unwrap_or_default();
    format!(
        "docusign-gateway demo\n\
         \n\
         Fake DocuSign account server: {fake_url}\n\
         Accounts of the demo user:\n{accounts}\
         \n\
         Browser: open {public_url}/auth/login. The fake consents at once and you land on\n\
         {public_url}/auth/session, with a button that mints a gateway token.\n\
         \n\
         curl, logging in with a cookie jar:\n\
         \x20 curl -s -c jar -b jar -L {public_url}/auth/login\n\
         \x20 curl -s -b jar {public_url}/restapi/v2.1/accounts/{first}\n\
         \n\
         curl with a gateway token (for scripts and SDKs):\n\
         \x20 TOKEN=$(curl -s -b jar -X POST {public_url}/auth/token | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/')\n\
         \x20 curl -s -H \"Authorization: Bearer $TOKEN\" {public_url}/restapi/v2.1/accounts/{first}/envelopes\n\
         \n\
         DocuSign's other APIs, with the same login (docusign.apis):\n\
         \x20 curl -s -b jar {public_url}/clickapi/v1/accounts/{first}/clickwraps     # Click\n\
         \x20 curl -s -b jar {public_url}/management/v2/organizations                # Admin\n\
         \x20 curl -s -b jar {public_url}/management/v2/organizations/{org}/users\n\
         \x20 curl -s -b jar {public_url}/v1/accounts/{first}/agreements             # Navigator (api.docusign.com)\n\
         \n\
         DocuSign's Python SDK (pip install docusign-esign):\n\
         \x20 api = ApiClient(host=\"{public_url}/restapi\")\n\
         \x20 api.set_default_header(\"Authorization\", \"Bearer \" + TOKEN)\n\
         \x20 AccountsApi(api).get_account_information(\"{first}\")\n\
         \n\
         DocuSign's Node SDK (npm install docusign-esign):\n\
         \x20 const api = new docusign.ApiClient({{ basePath: \"{public_url}/restapi\" }});\n\
         \x20 api.addDefaultHeader(\"Authorization\", \"Bearer \" + TOKEN);\n\
         \n\
         Stop with Ctrl-C.\n",
        fake_url = fake.account_server_url(),
        org = fake
            .config()
            .organizations
            .first()
            .map(|o| o.id.as_str())
            .unwrap_or_default(),
    )
}
