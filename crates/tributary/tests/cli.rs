//! The binary as a user meets it: `demo` on a small organization reports a capture equal
//! to the ground truth, `--help` explains every command, and bad input gives one clear
//! line instead of a panic.

use std::process::{Command, Output};

fn tributary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env("TRIBUTARY_LOG", "warn")
        .env_remove("TRIBUTARY_DATABASE_URL")
        .env_remove("TRIBUTARY_CONFIG")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_on_a_small_organization_equals_the_ground_truth() {
    let data = tempfile::tempdir().unwrap();
    let output = tributary(&[
        "demo",
        "--users",
        "6",
        "--messages-per-user",
        "40",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--exit-when-synced",
        "--json",
    ]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "demo failed: {stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints the summary as JSON");
    assert_eq!(summary["ground_truth"]["equal"], true, "{summary:#}");
    assert_eq!(summary["ground_truth"]["differences"], 0);
    let linked = summary["members_linked"].as_u64().unwrap();
    assert!(linked >= 3, "{summary:#}");
    assert_eq!(summary["links_by_status"]["idle"].as_u64(), Some(linked));
    assert!(summary["activities"].as_i64().unwrap() > 0);
    assert!(summary["quota_units"].as_u64().unwrap() > 0);
    assert!(
        stderr.contains("Reading the directory"),
        "progress is shown: {stderr}"
    );
    assert!(
        data.path().join("tributary.db").exists(),
        "the data directory holds the store"
    );
}

#[test]
fn help_explains_every_command() {
    let output = tributary(&["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for command in [
        "demo", "serve", "worker", "migrate", "admin", "emulate", "extract",
    ] {
        assert!(help.contains(command), "--help lists {command}: {help}");
        let sub = tributary(&[command, "--help"]);
        assert!(sub.status.success(), "{command} --help");
        assert!(text(&sub.stdout).contains("Usage:"), "{command} --help");
    }
    let serve = text(&tributary(&["serve", "--help"]).stdout);
    for flag in [
        "--data-dir",
        "--database-url",
        "--listen",
        "--smtp-host",
        "--master-key-file",
    ] {
        assert!(serve.contains(flag), "serve --help explains {flag}");
    }
}

#[test]
fn a_wrong_flag_is_one_clear_error() {
    let output = tributary(&["serve", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unreachable_database_says_what_to_fix() {
    let output = tributary(&[
        "migrate",
        "--database-url",
        "postgres://tributary:secret@127.0.0.1:1/tributary",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("check that PostgreSQL is running"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret"),
        "the password is not printed: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn migrate_creates_the_embedded_database() {
    let data = tempfile::tempdir().unwrap();
    let output = tributary(&["migrate", "--data-dir", data.path().to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("is up to date"));
    let again = tributary(&["migrate", "--data-dir", data.path().to_str().unwrap()]);
    assert!(again.status.success(), "migrating twice is harmless");
}

#[test]
fn a_config_file_is_read_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", from_file.to_str().unwrap()),
    )
    .unwrap();
    let output = tributary(&["migrate", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        from_file.join("tributary.db").exists(),
        "the file's data_dir is used"
    );
    let flag_dir = dir.path().join("from-flag");
    let output = tributary(&[
        "migrate",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        flag_dir.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("from-flag"), "the flag wins");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "data_dir = [1, 2]\n").unwrap();
    let output = tributary(&["migrate", "--config", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("data_dir"));
}
