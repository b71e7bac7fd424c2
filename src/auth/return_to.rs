//! Validation of `return_to`: where the browser goes after login. Only local
//! paths are accepted, so the gateway can never be used as an open redirect.

/// Where the browser goes after login when `return_to` is missing or refused.
pub const DEFAULT_RETURN_TO: &str = "/auth/session";
const MAX_LEN: usize = 2048;

/// Returns `candidate` when it is a safe local path, else the default.
pub fn sanitize(candidate: Option<&str>) -> String {
    match candidate {
        Some(c) if is_local_path(c) => c.to_string(),
        _ => DEFAULT_RETURN_TO.to_string(),
    }
}

/// One leading `/`, then no `//`-style authority, backslash or control
/// character, in the text itself or in any percent-decoded form (and no raw
/// whitespace, which has no place in a `Location` header).
pub fn is_local_path(candidate: &str) -> bool {
    if candidate.len() > MAX_LEN {
        return false;
    }
    let mut current = candidate.to_string();
    // Decode repeatedly: a browser or an upstream may decode more than once.
    if candidate.chars().any(char::is_whitespace) {
        return false;
    }
    for _ in 0..4 {
        if !is_plain_local(&current) {
            return false;
        }
        let decoded = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == current {
            return true;
        }
        current = decoded;
    }
    false
}

fn is_plain_local(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && !s.contains('\\')
        && !s.chars().any(char::is_control)
        && !s.contains('\u{FFFD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Open-redirect attempts; every line must be refused.
    const OPEN_REDIRECTS: &[&str] = &[
        "",
        "https://evil.example",
        "http://evil.example/",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/%2F/evil.example",
        "/%2f%2fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%5cevil.example",
        "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example",
        "/\tevil.example",
        "/%09/evil.example",
        "/ /evil.example",
        "/\r\nLocation: https://evil.example",
        "/%0d%0aSet-Cookie:x=y",
        "javascript:alert(1)",
        "evil.example",
        "/%ff/evil",
        "/\u{0}",
        "/%00",
        "\u{3000}/evil.example",
    ];

    #[test]
    fn refuses_open_redirects() {
        for attempt in OPEN_REDIRECTS {
            assert!(!is_local_path(attempt), "accepted {attempt:?}");
            assert_eq!(sanitize(Some(attempt)), DEFAULT_RETURN_TO);
        }
        assert!(!is_local_path(&format!("/{}", "a".repeat(3000))));
    }

    #[test]
    fn keeps_local_paths() {
        for ok in [
            "/",
            "/auth/session",
            "/restapi/v2.1/accounts/abc?from_date=2024-01-01&x=%20y",
            "/app/page#frag",
        ] {
            assert_eq!(sanitize(Some(ok)), ok);
        }
        assert_eq!(sanitize(None), DEFAULT_RETURN_TO);
    }
}
