//! The HTML page a browser gets at `/auth/session`: who is logged in, their
//! accounts, a button that mints a gateway token, and ready-to-paste examples
//! for curl and DocuSign's Python and Node SDKs. No token is ever rendered by
//! the server; the button fetches one into the page.

use crate::session::Session;
use crate::util::ids::random_id;
use crate::web::reply::{escape_html, Reply, HTML};

/// One table row per account.
fn account_rows(session: &Session) -> String {
    let mut rows = String::new();
    for a in &session.accounts {
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
            escape_html(&a.account_id),
            escape_html(&a.account_name),
            escape_html(&a.base_uri),
            match (&a.api_host, a.is_default) {
                (Err(_), _) => "not allowed by allowed_api_hosts",
                (Ok(_), true) => "default",
                (Ok(_), false) => "",
            }
        ));
    }
    rows
}

pub fn session_page(session: &Session, public_url: &str) -> Reply {
    let nonce = random_id();
    let account_id = session
        .default_account()
        .map(|a| a.account_id.as_str())
        .unwrap_or("ACCOUNT_ID");
    let rows = account_rows(session);
    let base = escape_html(&format!("{public_url}/restapi"));
    let acct = escape_html(account_id);
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>docusign-gateway session</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{nonce}">
body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;font-size:.9rem}}
pre{{background:#f5f5f7;padding:.8rem;overflow-x:auto;font-size:.85rem}}
button{{font-size:1rem;padding:.4rem .9rem;cursor:pointer}}#token{{word-break:break-all}}
</style></head><body>
<h1>Logged in to DocuSign through the gateway</h1>
<p><strong>{name}</strong> &lt;{email}&gt; &middot; user id <code>{sub}</code></p>
<h2>Accounts</h2>
<table><tr><th>account id</th><th>name</th><th>REST host (base_uri)</th><th></th></tr>
{rows}</table>
<h2>API access</h2>
<p>Browsers use the session cookie. For curl, scripts and DocuSign's SDKs, mint a gateway token:
the SDK's base path is the gateway's <code>/restapi</code> and its bearer token is the gateway token
(never a DocuSign token). Logging out ends every token of this session.</p>
<p><button id="mint">Mint a gateway token</button></p>
<p id="token-box" hidden>Token (expires <span id="expires"></span>):<br><code id="token"></code></p>
<h3>curl</h3>
<pre>curl -H "Authorization: Bearer <span class="t">$TOKEN</span>" \
  {base}/v2.1/accounts/{acct}</pre>
<h3>Python (<code>pip install docusign-esign</code>)</h3>
<pre>from docusign_esign import AccountsApi, ApiClient

api = ApiClient(host="{base}")
api.set_default_header("Authorization", "Bearer <span class="t">$TOKEN</span>")
print(AccountsApi(api).get_account_information("{acct}"))</pre>
<h3>Node (<code>npm install docusign-esign</code>)</h3>
<pre>const docusign = require("docusign-esign");

const api = new docusign.ApiClient({{ basePath: "{base}" }});
api.addDefaultHeader("Authorization", "Bearer <span class="t">$TOKEN</span>");
new docusign.AccountsApi(api).getAccountInformation("{acct}").then(console.log);</pre>
<form method="post" action="/auth/logout"><button>Log out</button></form>
<script nonce="{nonce}">
document.getElementById("mint").addEventListener("click", async () => {{
  const r = await fetch("/auth/token", {{ method: "POST", credentials: "same-origin" }});
  if (!r.ok) {{ alert("Could not mint a token: " + r.status); return; }}
  const j = await r.json();
  document.getElementById("token").textContent = j.token;
  document.getElementById("expires").textContent = new Date(j.expires_at * 1000).toISOString();
  document.getElementById("token-box").hidden = false;
  for (const e of document.querySelectorAll(".t")) e.textContent = j.token;
}});
</script>
</body></html>
"#,
        name = escape_html(&session.user.name),
        email = escape_html(&session.user.email),
        sub = escape_html(&session.user.sub),
    );
    Reply::new(200, HTML, body)
        .header(
            "Content-Security-Policy",
            format!(
                "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
                 connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
            ),
        )
        .no_store()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::model::test_support::session;

    #[test]
    fn page_shows_accounts_and_examples_but_no_token() {
        let s = session(60);
        let r = session_page(&s, "http://gw.example");
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(body.contains("A1") && body.contains("127.0.0.2"));
        assert!(body.contains("ApiClient(host=\"http://gw.example/restapi\")"));
        assert!(body.contains("basePath: \"http://gw.example/restapi\""));
        assert!(body.contains("not allowed by allowed_api_hosts"));
        assert!(!body.contains("\"at\"") && !body.contains(">at<"));
        assert!(r
            .headers
            .iter()
            .any(|(k, _)| *k == "Content-Security-Policy"));
    }
}
