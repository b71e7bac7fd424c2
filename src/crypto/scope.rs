//! What a scoped gateway token may do: which of its session's accounts,
//! which methods, which paths. Carried in the token's claims (signed), so
//! checking it costs no store call. Absent lists: no narrowing.

use serde::{Deserialize, Serialize};

/// Most entries of one list of a scope.
pub const MAX_SCOPE_ENTRIES: usize = 32;
/// Longest path pattern.
pub const MAX_PATTERN_LEN: usize = 512;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Account ids (lower-case); `None`: every account of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
    /// Methods (upper-case); `None`: every method the gateway forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Path patterns (see [`path_matches`]); `None`: every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// Which part of a scope refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    Account,
    Method,
    Path,
}

impl Outside {
    pub fn as_str(self) -> &'static str {
        match self {
            Outside::Account => "account",
            Outside::Method => "method",
            Outside::Path => "path",
        }
    }
}

impl Scope {
    /// Whether this scope narrows nothing.
    pub fn is_whole(&self) -> bool {
        self.accounts.is_none() && self.methods.is_none() && self.paths.is_none()
    }

    /// Whether a call with `method` to `path` (no query) on `account` (the
    /// account the call goes to, named or default) is inside the scope.
    pub fn check(&self, account: Option<&str>, method: &str, path: &str) -> Result<(), Outside> {
        if let Some(accounts) = &self.accounts {
            let listed = |account: &str| accounts.iter().any(|a| a.eq_ignore_ascii_case(account));
            if !account.is_some_and(listed) {
                return Err(Outside::Account);
            }
        }
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m == method) {
                return Err(Outside::Method);
            }
        }
        if let Some(paths) = &self.paths {
            if !paths.iter().any(|p| path_matches(p, path)) {
                return Err(Outside::Path);
            }
        }
        Ok(())
    }
}

/// Why a path pattern is not one.
pub fn pattern_error(pattern: &str) -> Option<&'static str> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Some("is too long");
    }
    let Some(rest) = pattern.strip_prefix('/') else {
        return Some("must start with /");
    };
    if pattern.contains(['?', '#']) {
        return Some("is a path without query or fragment");
    }
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "" if i + 1 < segments.len() => return Some("has an empty segment"),
            "." | ".." => return Some("has a dot segment"),
            "**" if i + 1 < segments.len() => return Some("may have ** at the end only"),
            s if s != "*" && s != "**" && s.contains('*') => {
                return Some("uses * or ** as a whole segment only")
            }
            s if s.bytes().any(|b| b.is_ascii_control() || b == b' ') => {
                return Some("has a control character or a space")
            }
            _ => {}
        }
    }
    None
}

/// Whether `path` matches `pattern`: segment by segment, `*` any one
/// segment, a final `**` any number of segments (none included), any
/// other segment itself exactly.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (Some("**"), _) => return want.next().is_none(),
            (Some("*"), Some(s)) if !s.is_empty() => {}
            (Some(w), Some(s)) if w == s && w != "*" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPES: &str = "/restapi/v2.1/accounts/*/envelopes/**";

    #[test]
    fn one_star_is_one_segment_and_two_are_the_rest() {
        assert!(path_matches(
            ENVELOPES,
            "/restapi/v2.1/accounts/a1/envelopes"
        ));
        assert!(path_matches(
            ENVELOPES,
            "/restapi/v2.1/accounts/a1/envelopes/e1/documents/1"
        ));
        assert!(!path_matches(ENVELOPES, "/restapi/v2.1/accounts/a1/users"));
        assert!(!path_matches(
            ENVELOPES,
            "/restapi/v2.1/accounts//envelopes"
        ));
        assert!(!path_matches(
            ENVELOPES,
            "/restapi/v2.1/accounts/a1/b/envelopes"
        ));
        assert!(path_matches(
            "/restapi/v2.1/accounts/*",
            "/restapi/v2.1/accounts/a1"
        ));
        assert!(!path_matches(
            "/restapi/v2.1/accounts/*",
            "/restapi/v2.1/accounts/a1/x"
        ));
        assert!(!path_matches(
            "/restapi/v2.1/accounts/*",
            "/restapi/v2.1/accounts"
        ));
        assert!(!path_matches("/a/b", "/a/b/"));
        assert!(!path_matches("/a/B", "/a/b"), "exact, case included");
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "restapi", "/a/**/b", "/a/b*", "/a//b", "/a/../b", "/a?x=1", "/a b",
        ] {
            assert!(pattern_error(bad).is_some(), "{bad}");
        }
        for good in ["/", "/a/", ENVELOPES, "/restapi/**", "/a/*/b"] {
            assert_eq!(pattern_error(good), None, "{good}");
        }
    }

    #[test]
    fn a_scope_refuses_by_account_method_then_path() {
        let s = Scope {
            accounts: Some(vec!["a1".into()]),
            methods: Some(vec!["GET".into(), "HEAD".into()]),
            paths: Some(vec![ENVELOPES.into()]),
        };
        let ok = "/restapi/v2.1/accounts/A1/envelopes/e";
        assert_eq!(s.check(Some("A1"), "GET", ok), Ok(()));
        assert_eq!(s.check(Some("a2"), "GET", ok), Err(Outside::Account));
        assert_eq!(s.check(Some("a1"), "POST", ok), Err(Outside::Method));
        assert_eq!(
            s.check(Some("a1"), "GET", "/restapi/v2.1/accounts/a1/users"),
            Err(Outside::Path)
        );
        assert!(Scope::default().is_whole());
        assert_eq!(Scope::default().check(Some("x"), "DELETE", "/x"), Ok(()));
        // An organization's call names no account: outside an account list.
        let org = "/management/v2/organizations";
        assert_eq!(s.check(None, "GET", org), Err(Outside::Account));
        assert_eq!(Scope::default().check(None, "GET", org), Ok(()));
    }
}
