//! The directory of `server.upgrade_sock`. On SIGQUIT pingora hands the
//! listening sockets to whatever listens on that socket, so only the
//! gateway's user may be able to create it: its directory must not be
//! writable by group or others. Start creates a missing directory 0700;
//! `check` reports the same refusal without creating anything.

use std::fs::DirBuilder;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::config::ConfigError;

const KEY: &str = "server.upgrade_sock";

/// For `check`: refuses a directory that exists and is writable by group or
/// others (or is not a directory). A missing directory passes: start creates it.
pub fn check_upgrade_dir(sock: &Path) -> Result<(), ConfigError> {
    let dir = dir_of(sock)?;
    match std::fs::metadata(dir) {
        Ok(meta) => private(&meta),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ConfigError::new(
            KEY,
            format!("cannot inspect the socket's directory: {e}"),
        )),
    }
}

/// At start: [`check_upgrade_dir`], then creates a missing directory (and
/// missing parents) with mode 0700 and checks the result.
pub fn prepare_upgrade_dir(sock: &Path) -> Result<(), ConfigError> {
    check_upgrade_dir(sock)?;
    let dir = dir_of(sock)?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            ConfigError::new(
                KEY,
                format!("cannot create the socket's directory (mode 0700): {e}"),
            )
        })?;
    let meta = std::fs::metadata(dir).map_err(|e| {
        ConfigError::new(KEY, format!("cannot inspect the socket's directory: {e}"))
    })?;
    private(&meta)
}

fn dir_of(sock: &Path) -> Result<&Path, ConfigError> {
    sock.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| ConfigError::new(KEY, "expected a socket path inside a directory"))
}

/// Only a directory that group and others cannot write is accepted. The
/// message names the mode, not the path (which may come from the environment).
fn private(meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    if !meta.is_dir() {
        return Err(ConfigError::new(
            KEY,
            "the socket's directory is not a directory",
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(ConfigError::new(
            KEY,
            format!(
                "the socket's directory is writable by group or others (mode {mode:04o}): \
                 whoever listens on the socket receives the gateway's listening sockets; \
                 expected a directory only the gateway's user can write (chmod 0700), \
                 or leave server.upgrade_sock unset"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A fresh, not yet existing directory path under the temp dir.
    fn scratch() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        std::env::temp_dir().join(format!(
            "dsgw-upgrade-dir-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ))
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_missing_directory_is_created_0700() {
        let root = scratch();
        let dir = root.join("nested").join("docusign-gateway");
        let sock = dir.join("upgrade.sock");
        check_upgrade_dir(&sock).expect("check passes: start creates it");
        assert!(!dir.exists(), "check creates nothing");
        prepare_upgrade_dir(&sock).unwrap();
        assert_eq!(mode(&dir), 0o700);
        prepare_upgrade_dir(&sock).expect("an existing private directory passes");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_directory_writable_by_others_is_refused() {
        for bad in [0o777, 0o770, 0o1777, 0o722] {
            let dir = scratch();
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(bad)).unwrap();
            let sock = dir.join("upgrade.sock");
            for result in [check_upgrade_dir(&sock), prepare_upgrade_dir(&sock)] {
                let e = result.expect_err("refused");
                assert_eq!(e.key, "server.upgrade_sock");
                assert!(e.message.contains("writable by group or others"), "{e}");
                assert!(!e.message.contains(&*dir.to_string_lossy()), "{e}");
            }
            assert_eq!(mode(&dir), bad & 0o777, "left as it was");
            std::fs::remove_dir(&dir).unwrap();
        }
    }

    #[test]
    fn a_private_or_read_only_shared_directory_is_accepted() {
        for good in [0o700, 0o755, 0o750] {
            let dir = scratch();
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(good)).unwrap();
            prepare_upgrade_dir(&dir.join("upgrade.sock")).unwrap();
            std::fs::remove_dir(&dir).unwrap();
        }
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_refused() {
        let file = scratch();
        std::fs::write(&file, "").unwrap();
        let e = check_upgrade_dir(&file.join("upgrade.sock")).unwrap_err();
        assert!(e.message.contains("not a directory"), "{e}");
        std::fs::remove_file(file).unwrap();
    }
}
