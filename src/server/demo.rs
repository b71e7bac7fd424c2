//! `docusign-gateway demo`: the gateway and the built-in fake DocuSign on
//! loopback, with the embedded demo configuration. Needs no credentials.
//! The fake's Connect sender posts every envelope's event to the gateway's
//! `/webhooks/connect`, which delivers it to a small receiver printing one
//! line per event on stdout.

use std::net::SocketAddr;

use fake_docusign::receiver::{self, Receiver};
use fake_docusign::{ConnectListener, FakeConfig, FakeDocuSign};
use url::Url;

use crate::config::Config;
use crate::util::ids::random_id;

/// The demo configuration, embedded in the binary.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// The demo's `[[webhook]]`.
pub const DEMO_WEBHOOK: &str = "connect";
/// Its `hmac_keys_env`: the demo sets it to a fresh random key.
pub const DEMO_CONNECT_KEYS_ENV: &str = "DEMO_CONNECT_HMAC_KEYS";

/// Starts the fake and the webhook receiver, prints how to use the demo,
/// then runs the gateway.
pub fn run(listen: SocketAddr) -> Result<(), String> {
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let public_url = format!("http://{host}:{}", listen.port());

    let connect_key = random_id();
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != DEMO_CONNECT_KEYS_ENV)
        .collect();
    env.push((DEMO_CONNECT_KEYS_ENV.into(), connect_key.clone()));
    let probe = Config::from_toml_str(DEMO_CONFIG, env.clone()).map_err(|e| e.to_string())?;

    let mut fake_cfg = FakeConfig::demo_defaults();
    fake_cfg.client_id = probe.docusign.client_id.clone();
    fake_cfg.client_secret = probe.docusign.client_secret.expose().to_string();
    fake_cfg.redirect_uris = vec![format!("{public_url}{}", probe.docusign.callback_path)];
    let webhook_url = format!("{public_url}/webhooks/{DEMO_WEBHOOK}");
    fake_cfg.connect = vec![ConnectListener::new(webhook_url.clone(), vec![connect_key])];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fake-docusign")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the fake DocuSign runtime: {e}"))?;
    let fake = runtime
        .block_on(FakeDocuSign::start(fake_cfg))
        .map_err(|e| format!("cannot start the fake DocuSign: {e}"))?;
    let receiver = runtime
        .block_on(Receiver::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            |arrival| {
                println!(
                    "receiver: {}",
                    receiver::summary(&arrival.headers, &arrival.body)
                );
            },
        ))
        .map_err(|e| format!("cannot start the demo's webhook receiver: {e}"))?;
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
    let mut cfg = Config::from_toml_str(DEMO_CONFIG, env).map_err(|e| e.to_string())?;
    // The receiver listens on an ephemeral port: deliver there.
    let forward_to = Url::parse(&receiver.url()).map_err(|e| format!("the receiver's URL: {e}"))?;
    for hook in cfg.webhooks.iter_mut().filter(|h| h.name == DEMO_WEBHOOK) {
        hook.forward_to = forward_to.clone();
    }

    println!("{}", hints(&public_url, &fake, &webhook_url, &receiver));
    super::run(cfg, false).map_err(|e| e.to_string())
}

fn hints(public_url: &str, fake: &FakeDocuSign, webhook_url: &str, receiver: &Receiver) -> String {
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
         DocuSign Connect: each envelope created makes the fake post its event, signed,\n\
         to {webhook_url}; the gateway checks, stores and delivers it to\n\
         the demo receiver ({receiver_url}), which prints each event here (\"receiver: ...\"):\n\
         \x20 curl -s -b jar -H 'Content-Type: application/json' -d '{{\"emailSubject\":\"Hello\",\"status\":\"sent\"}}' {public_url}/restapi/v2.1/accounts/{first}/envelopes\n\
         \n\
         Stop with Ctrl-C.\n",
        receiver_url = receiver.url(),
        fake_url = fake.account_server_url(),
        org = fake
            .config()
            .organizations
            .first()
            .map(|o| o.id.as_str())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_has_the_connect_webhook_keyed_by_the_demo() {
        let env = vec![(DEMO_CONNECT_KEYS_ENV.to_string(), "k".to_string())];
        let cfg = Config::from_toml_str(DEMO_CONFIG, env).expect("the demo config parses");
        let hook = cfg.webhook(DEMO_WEBHOOK).expect("the demo's webhook");
        assert_eq!(hook.hmac_keys_env, DEMO_CONNECT_KEYS_ENV);
        assert_eq!(hook.hmac_keys.len(), 1);
    }
}
