//! Files on disk are the owner's alone: the data directory (and any parent it needed) is
//! created 0700, the SQLite database and its `-wal` / `-shm` files 0600, the master key
//! 0600, whatever the process umask lets through.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tributary_store::{DATABASE_FILE, MASTER_KEY_FILE, MasterKey, Store, TenantId};

/// The permission bits of `path`, in octal.
fn mode(path: &Path) -> String {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:o}", metadata.permissions().mode() & 0o777)
}

/// The usual umask, under which plain creation gives 0755 directories and 0644 files: the
/// modes must come from how the files are created, not from a strict umask.
fn permissive_umask() {
    // SAFETY: umask(2) only sets the process's file-mode mask and cannot fail; every test
    // of this binary sets the same value.
    unsafe {
        libc::umask(0o022);
    }
}

#[tokio::test]
async fn a_new_data_directory_and_its_files_are_private() {
    permissive_umask();
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("missing parent").join("data");
    let store = Store::open_in_data_dir(&data_dir).await.unwrap();
    MasterKey::load_or_create_file(&data_dir.join(MASTER_KEY_FILE)).unwrap();
    // A write, so the write-ahead log and its index exist while the store is open.
    store
        .create_tenant(&TenantId::new("acme"), "Acme")
        .await
        .unwrap();
    assert_eq!(mode(&data_dir), "700", "the data directory");
    assert_eq!(
        mode(&root.path().join("missing parent")),
        "700",
        "its new parent"
    );
    let database = data_dir.join(DATABASE_FILE);
    for file in [
        database.clone(),
        database.with_extension("db-wal"),
        database.with_extension("db-shm"),
        data_dir.join(MASTER_KEY_FILE),
    ] {
        assert_eq!(mode(&file), "600", "{}", file.display());
    }
    store.close().await;
}

#[tokio::test]
async fn a_database_opened_by_path_is_private() {
    permissive_umask();
    let root = tempfile::tempdir().unwrap();
    let database = root.path().join("nested").join("store.sqlite");
    let store = Store::open(database.to_str().unwrap()).await.unwrap();
    store
        .create_tenant(&TenantId::new("acme"), "Acme")
        .await
        .unwrap();
    assert_eq!(mode(&root.path().join("nested")), "700");
    for file in [
        database.clone(),
        database.with_extension("sqlite-wal"),
        database.with_extension("sqlite-shm"),
    ] {
        assert_eq!(mode(&file), "600", "{}", file.display());
    }
    store.close().await;
}

/// An existing directory keeps the mode its owner gave it (a warning names it); the
/// database created in it is private all the same.
#[tokio::test]
async fn an_existing_shared_directory_is_kept_as_it_is() {
    permissive_umask();
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("shared");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let store = Store::open_in_data_dir(&data_dir).await.unwrap();
    assert_eq!(mode(&data_dir), "750");
    assert_eq!(mode(&data_dir.join(DATABASE_FILE)), "600");
    store.close().await;
}
