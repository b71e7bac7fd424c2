//! What the fuzz targets share: the gateway's codecs built from a test
//! configuration, once per process.

use std::sync::OnceLock;
use std::time::Duration;

use docusign_gateway::config::Config;
use docusign_gateway::crypto::api_token::ApiTokens;
use docusign_gateway::crypto::cookies::CookieCodec;

pub const SECRET: &str = "fuzz-secret-q8Vx2LmN9pR4tW7yZ1bC3dF6gH0jK5sA";
pub const ISSUER: &str = "https://gw.example";

fn config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        let toml = format!(
            "[server]\npublic_url = \"{ISSUER}\"\n[docusign]\nclient_id = \"ik\"\n\
             client_secret = \"cs\"\n[session]\nsecret = \"{SECRET}\"\nsecure_cookie = true\n"
        );
        Config::from_toml_str(&toml, Vec::<(String, String)>::new()).expect("fuzz config")
    })
}

/// The cookie codec (with `secure_cookie`, so `__Host-` names).
pub fn codec() -> &'static CookieCodec {
    static CODEC: OnceLock<CookieCodec> = OnceLock::new();
    CODEC.get_or_init(|| CookieCodec::new(&config().session))
}

/// The gateway-token signer and verifier.
pub fn tokens() -> &'static ApiTokens {
    static TOKENS: OnceLock<ApiTokens> = OnceLock::new();
    TOKENS.get_or_init(|| ApiTokens::new(SECRET.as_bytes(), ISSUER, 3600))
}

/// `name=value` of a freshly sealed cookie from a `Set-Cookie` value.
pub fn cookie_pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap_or_default()
}

/// Flips the bytes of `text` named by `edits` (position, xor mask pairs),
/// keeping it UTF-8; the edited text, or `None` when no edit applies.
pub fn tamper(text: &str, edits: &[u8]) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    if bytes.is_empty() {
        return None;
    }
    for pair in edits.chunks_exact(2) {
        let at = pair[0] as usize % bytes.len();
        bytes[at] ^= pair[1];
    }
    String::from_utf8(bytes).ok()
}

/// A session lifetime for sealed test cookies.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
