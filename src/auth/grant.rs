//! The optional JSON body of `POST /auth/token`: a name, a lifetime and a
//! scope for the new token, each checked to only narrow what the session
//! may do. Every error is 400 `invalid_scope` naming the field.

use serde_json::{Map, Value};

use crate::config::AccessConfig;
use crate::crypto::api_token::Grant;
use crate::crypto::scope::{pattern_error, Scope, MAX_SCOPE_ENTRIES};
use crate::session::Session;
use crate::util::paths::FORWARDED_METHODS as FORWARDED;
use crate::web::reply::Reply;

/// Largest body `POST /auth/token` takes.
pub const MAX_GRANT_BODY_BYTES: usize = 16 * 1024;
/// Longest token name.
const MAX_NAME_LEN: usize = 64;

/// 400 `invalid_scope` with `message`.
pub fn invalid(message: impl AsRef<str>) -> Reply {
    Reply::error(400, "invalid_scope", message.as_ref()).no_store()
}

/// The grant `body` asks for, for `session` at `now` (empty: the whole
/// session, as a token without a body always was).
pub fn parse(
    body: &[u8],
    session: &Session,
    access: &AccessConfig,
    now: u64,
) -> Result<Grant, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Grant::default());
    }
    let fields: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(invalid("The body must be a JSON object.")),
        Err(e) => return Err(invalid(format!("The body is not JSON: {e}."))),
    };
    let left = session.expires_at.saturating_sub(now);
    from_fields(&fields, Some(session), access, left).map_err(invalid)
}

/// The grant of a service token the `token` command mints: the same rules,
/// but the service's accounts are only known to DocuSign, so an account is
/// checked against the policy (and DocuSign's grammar of ids) only.
pub fn for_service(
    fields: &Map<String, Value>,
    access: &AccessConfig,
    max_ttl: u64,
) -> Result<Grant, String> {
    from_fields(fields, None, access, max_ttl)
}

fn from_fields(
    fields: &Map<String, Value>,
    session: Option<&Session>,
    access: &AccessConfig,
    max_ttl: u64,
) -> Result<Grant, String> {
    let mut grant = Grant::default();
    let mut scope = Scope::default();
    for (key, value) in fields {
        match key.as_str() {
            "name" => grant.name = Some(name(value)?),
            "ttl_secs" => grant.ttl_secs = Some(ttl(value, max_ttl)?),
            "accounts" => scope.accounts = Some(accounts(value, session, access)?),
            "methods" => scope.methods = Some(methods(value)?),
            "paths" => scope.paths = Some(paths(value)?),
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(format!(
                    "{shown}: unknown field (expected name, ttl_secs, accounts, methods, paths)."
                ));
            }
        }
    }
    grant.scope = (!scope.is_whole()).then_some(scope);
    Ok(grant)
}

fn name(value: &Value) -> Result<String, String> {
    match value.as_str() {
        Some(n)
            if (1..=MAX_NAME_LEN).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b" _.-".contains(&b)) =>
        {
            Ok(n.to_string())
        }
        _ => Err("name: expected 1 to 64 characters of A-Z, a-z, 0-9, space, _, . and -.".into()),
    }
}

fn ttl(value: &Value, left: u64) -> Result<u64, String> {
    match value.as_u64() {
        Some(0) | None => Err("ttl_secs: expected a whole number of seconds, at least 1.".into()),
        Some(t) if t > left => Err(format!(
            "ttl_secs: {t} is beyond the session, which ends in {left} seconds."
        )),
        Some(t) => Ok(t),
    }
}

/// The strings of a list field, 1 to [`MAX_SCOPE_ENTRIES`] of them.
fn list<'v>(field: &str, value: &'v Value) -> Result<Vec<&'v str>, String> {
    let items = value
        .as_array()
        .filter(|a| (1..=MAX_SCOPE_ENTRIES).contains(&a.len()))
        .ok_or_else(|| format!("{field}: expected a list of 1 to {MAX_SCOPE_ENTRIES} strings."))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| format!("{field}: expected a list of strings."))
        })
        .collect()
}

/// Pushes `item` unless it is there already.
fn push_once(out: &mut Vec<String>, item: String) {
    if !out.contains(&item) {
        out.push(item);
    }
}

fn accounts(
    value: &Value,
    session: Option<&Session>,
    access: &AccessConfig,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for id in list("accounts", value)? {
        let known = match session {
            Some(s) => s.account(id).is_some(),
            None => {
                (1..=64).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }
        };
        if !known || !access.account_allowed(id) {
            let shown: String = id.chars().take(64).collect();
            return Err(format!(
                "accounts: {shown} is not an account this session may use."
            ));
        }
        push_once(&mut out, id.to_ascii_lowercase());
    }
    Ok(out)
}

fn methods(value: &Value) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for m in list("methods", value)? {
        let upper = m.to_ascii_uppercase();
        if !FORWARDED.contains(&upper.as_str()) {
            let shown: String = m.chars().take(16).collect();
            return Err(format!(
                "methods: {shown} is not one the gateway forwards ({}).",
                FORWARDED.join(", ")
            ));
        }
        push_once(&mut out, upper);
    }
    Ok(out)
}

fn paths(value: &Value) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for p in list("paths", value)? {
        if let Some(why) = pattern_error(p) {
            let shown: String = p.chars().take(80).collect();
            return Err(format!("paths: {shown} {why}."));
        }
        push_once(&mut out, p.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::model::test_support::session_at;

    fn parse_at(body: &str) -> Result<Grant, String> {
        let s = session_at(1000, 600);
        parse(body.as_bytes(), &s, &AccessConfig::default(), 1000).map_err(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(
                (r.status, v["error"].as_str()),
                (400, Some("invalid_scope"))
            );
            v["message"].as_str().unwrap().to_string()
        })
    }

    #[test]
    fn no_body_is_the_whole_session() {
        assert_eq!(parse_at("").unwrap(), Grant::default());
        assert_eq!(parse_at(" \n").unwrap(), Grant::default());
        assert_eq!(parse_at("{}").unwrap(), Grant::default());
    }

    #[test]
    fn a_scope_is_normalised() {
        let g = parse_at(
            r#"{"name":"crm-hook","ttl_secs":60,"accounts":["A1","a1"],"methods":["get","HEAD"],"paths":["/restapi/**"]}"#,
        )
        .unwrap();
        assert_eq!(g.name.as_deref(), Some("crm-hook"));
        assert_eq!(g.ttl_secs, Some(60));
        let scope = g.scope.unwrap();
        assert_eq!(scope.accounts, Some(vec!["a1".to_string()]));
        assert_eq!(
            scope.methods,
            Some(vec!["GET".to_string(), "HEAD".to_string()])
        );
        assert_eq!(scope.paths, Some(vec!["/restapi/**".to_string()]));
    }

    #[test]
    fn every_error_names_its_field() {
        for (body, field) in [
            (r#"{"nmae":"x"}"#, "nmae"),
            (r#"{"name":""}"#, "name"),
            (r#"{"name":"a/b"}"#, "name"),
            (r#"{"ttl_secs":0}"#, "ttl_secs"),
            (r#"{"ttl_secs":601}"#, "ttl_secs"),
            (r#"{"ttl_secs":"60"}"#, "ttl_secs"),
            (r#"{"accounts":["ZZZ"]}"#, "accounts"),
            (r#"{"accounts":[]}"#, "accounts"),
            (r#"{"accounts":"A1"}"#, "accounts"),
            (r#"{"methods":["TRACE"]}"#, "methods"),
            (r#"{"methods":[1]}"#, "methods"),
            (r#"{"paths":["/a/**/b"]}"#, "paths"),
            (r#"{"paths":["relative"]}"#, "paths"),
        ] {
            let message = parse_at(body).unwrap_err();
            assert!(
                message.starts_with(&format!("{field}:")),
                "{body}: {message}"
            );
        }
        assert!(parse_at("[1]").is_err());
        assert!(parse_at("{").is_err());
    }

    #[test]
    fn a_policy_refused_account_cannot_be_scoped_in() {
        let s = session_at(1000, 600);
        let text = "[docusign]\nclient_id = \"ik\"\nclient_secret = \"cs\"\n[session]\nsecret = \"0123456789abcdef0123456789abcdef\"\n[access]\nallowed_accounts = [\"a2\"]\n";
        let access = crate::config::Config::from_toml_str(text, Vec::new())
            .unwrap()
            .access;
        assert!(parse(br#"{"accounts":["A1"]}"#, &s, &access, 1000).is_err());
        assert!(parse(br#"{"accounts":["A2"]}"#, &s, &access, 1000).is_ok());
    }
}
