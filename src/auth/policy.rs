//! The `[access]` policy applied to people and sessions: who may log in,
//! which accounts a session keeps, and (again before every forward, with
//! the serving instance's policy) whether a stored session still passes.

use crate::config::{AccessConfig, AccessRefusal};
use crate::docusign::UserInfo;
use crate::session::{Account, Session};

/// Checks a user who just logged in, and keeps only their allowed accounts
/// (DocuSign's default stays the default if it is allowed; otherwise the
/// session's default is the first allowed one).
pub fn admit(access: &AccessConfig, info: &mut UserInfo) -> Result<(), AccessRefusal> {
    if !access.user_allowed(&info.sub, &info.email) {
        return Err(AccessRefusal::User);
    }
    info.accounts
        .retain(|a| access.account_allowed(&a.account_id));
    if info.accounts.is_empty() {
        return Err(AccessRefusal::NoAllowedAccount);
    }
    Ok(())
}

/// Whether a stored session's user still passes this instance's policy.
pub fn user_still_allowed(access: &AccessConfig, session: &Session) -> bool {
    access.user_allowed(&session.user.sub, &session.user.email)
}

/// The session's accounts this instance's policy allows.
pub fn allowed_accounts<'s>(
    access: &'s AccessConfig,
    session: &'s Session,
) -> impl Iterator<Item = &'s Account> + 's {
    session
        .accounts
        .iter()
        .filter(|a| access.account_allowed(&a.account_id))
}

/// The account of paths that name none: the session's default if the
/// policy allows it, else its first allowed account.
pub fn default_account<'s>(access: &'s AccessConfig, session: &'s Session) -> Option<&'s Account> {
    session
        .default_account()
        .filter(|a| access.account_allowed(&a.account_id))
        .or_else(|| allowed_accounts(access, session).next())
}

/// The session as this instance's policy lets its user see it: only the
/// allowed accounts, the default as [`default_account`] picks it.
pub fn view(access: &AccessConfig, session: &Session) -> Session {
    let default = default_account(access, session).map(|a| a.account_id.clone());
    let mut shown = session.clone();
    shown
        .accounts
        .retain(|a| access.account_allowed(&a.account_id));
    for a in &mut shown.accounts {
        a.is_default = Some(&a.account_id) == default.as_ref();
    }
    shown.default_account = shown
        .accounts
        .iter()
        .position(|a| a.is_default)
        .unwrap_or(0);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::docusign::UserAccount;
    use crate::session::model::test_support::session_at;

    fn access(extra: &str) -> AccessConfig {
        let text = format!(
            "[docusign]\nclient_id = \"ik\"\nclient_secret = \"cs\"\n[session]\nsecret = \"0123456789abcdef0123456789abcdef\"\n[access]\n{extra}"
        );
        Config::from_toml_str(&text, Vec::new()).unwrap().access
    }

    fn info(email: &str) -> UserInfo {
        let account = |id: &str, default| UserAccount {
            account_id: id.into(),
            account_name: id.into(),
            base_uri: "https://demo.docusign.net".into(),
            is_default: default,
        };
        UserInfo {
            sub: "u-1".into(),
            name: "U".into(),
            email: email.into(),
            accounts: vec![account("a1", false), account("a2", true)],
        }
    }

    #[test]
    fn a_login_keeps_only_allowed_accounts_and_refuses_users_without_one() {
        let mut i = info("x@example.com");
        admit(&access("allowed_accounts = [\"A1\"]"), &mut i).unwrap();
        assert_eq!(i.accounts.len(), 1);
        assert_eq!(i.accounts[0].account_id, "a1");
        let mut i = info("x@example.com");
        assert_eq!(
            admit(&access("allowed_accounts = [\"a9\"]"), &mut i),
            Err(AccessRefusal::NoAllowedAccount)
        );
        let mut i = info("x@other.org");
        assert_eq!(
            admit(&access("allowed_email_domains = [\"example.com\"]"), &mut i),
            Err(AccessRefusal::User)
        );
        let mut i = info("x@other.org");
        admit(&access(""), &mut i).unwrap();
        assert_eq!(i.accounts.len(), 2);
    }

    #[test]
    fn the_default_account_falls_back_to_the_first_allowed() {
        let s = session_at(1000, 60); // A1, A2 (default)
        let narrow = access("allowed_accounts = [\"a1\"]");
        assert_eq!(default_account(&narrow, &s).unwrap().account_id, "A1");
        assert_eq!(default_account(&access(""), &s).unwrap().account_id, "A2");
        let none = access("allowed_accounts = [\"a9\"]");
        assert!(default_account(&none, &s).is_none());
        assert_eq!(allowed_accounts(&narrow, &s).count(), 1);
        let shown = view(&narrow, &s);
        assert_eq!(shown.accounts.len(), 1);
        assert!(shown.accounts[0].is_default);
        assert_eq!(shown.default_account().unwrap().account_id, "A1");
        assert!(user_still_allowed(&access(""), &s));
        assert!(!user_still_allowed(
            &access("allowed_users = [\"someone-else\"]"),
            &s
        ));
    }
}
