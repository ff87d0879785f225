//! Files only their owner can read: the data directory holds every captured contact
//! point, the password hashes and the master key.
//!
//! New directories are created 0700 and new files 0600 by the call that creates them, so
//! there is no moment in which another local user could open them (a `chmod` afterwards
//! would leave one). Existing ones are left as their owner set them, with a warning once
//! per path: a group-readable directory may be deliberate (a backup group), and changing
//! it behind the operator's back would be a surprise.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Creates `dir` and any missing parent, each readable by the owner only (0700). An
/// existing directory is kept as it is; if other users can read or enter it, a warning
/// says so (once per path in this process).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    create_dirs(dir)?;
    warn_if_shared(dir, "directory", "700");
    Ok(())
}

#[cfg(unix)]
fn create_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_dirs(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Opens `path` for writing, creating it (empty) readable by the owner only (0600) when
/// missing; an existing file is kept as it is, with a warning when others can read it.
/// SQLite gives the `-wal` and `-shm` files of a database the database file's mode, so
/// creating the database this way before SQLite opens it makes all three private.
pub(crate) fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    warn_if_shared(path, "file", "600");
    Ok(file)
}

/// Logs a warning, once per path, when group or other users have any permission on
/// `path`.
fn warn_if_shared(path: &Path, what: &str, private_mode: &str) {
    let Some(mode) = shared_mode(path) else {
        return;
    };
    static WARNED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.insert(path.to_owned()) {
        tracing::warn!(
            "the {what} {} has mode {mode:o}: other local users may read Tributary's data; \
             `chmod {private_mode} {}` makes it private",
            path.display(),
            path.display()
        );
    }
}

/// The permission bits of `path` when they give group or other users anything.
#[cfg(unix)]
fn shared_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn shared_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_group_or_other_permissions_count_as_shared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        create_private_file(&path).unwrap();
        assert_eq!(shared_mode(&path), None);
        for (mode, shared) in [(0o644, Some(0o644)), (0o640, Some(0o640)), (0o700, None)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(shared_mode(&path), shared, "{mode:o}");
        }
    }

    #[test]
    fn an_existing_file_is_opened_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"kept").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        create_private_file(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}
