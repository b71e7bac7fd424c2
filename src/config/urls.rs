//! URL-valued keys.

use url::Url;

use super::error::{ConfigError, Origins};

/// `text` as an absolute URL with a host; the error names `key`.
pub(super) fn parse_url(key: &str, text: &str, origins: &Origins) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| {
        ConfigError::invalid(
            key,
            &format!("expected an absolute URL ({e})"),
            text,
            origins,
        )
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(
            key,
            "expected a URL with a host",
            text,
            origins,
        ));
    }
    Ok(url)
}
