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

/// `tributary admin ARGS… --data-dir DIR`: the store flag after the subcommand.
fn admin(data: &std::path::Path, args: &[&str]) -> Output {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", data.to_str().unwrap()]);
    tributary(&all)
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", text(&output.stderr));
    text(&output.stdout)
}

/// The line of `list-users` for `email`, as its tab-separated fields.
fn listed(data: &std::path::Path, email: &str) -> Option<Vec<String>> {
    succeeded(&admin(data, &["list-users", "acme"]))
        .lines()
        .find(|line| line.starts_with(&format!("{email}\t")))
        .map(|line| line.split('\t').map(str::to_owned).collect())
}

#[test]
fn accounts_are_managed_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    succeeded(&admin(data, &["create-tenant", "acme"]));
    // The flag before the subcommand works too.
    let before = tributary(&[
        "admin",
        "--data-dir",
        data.to_str().unwrap(),
        "create-user",
        "acme",
        "ada@acme.test",
        "--role",
        "admin",
    ]);
    succeeded(&before);
    succeeded(&admin(data, &["create-user", "acme", "bob@acme.test"]));
    assert_eq!(
        listed(data, "bob@acme.test").unwrap()[1..3],
        ["member", "active"]
    );

    // set-role: promote, then the last active admin cannot be demoted.
    succeeded(&admin(data, &["set-role", "bob@acme.test", "admin"]));
    assert_eq!(listed(data, "bob@acme.test").unwrap()[1], "admin");
    succeeded(&admin(data, &["set-role", "BOB@acme.test", "member"]));
    let refused = admin(data, &["set-role", "ada@acme.test", "member"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("last active admin"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(listed(data, "ada@acme.test").unwrap()[1], "admin");

    // disable-user / enable-user.
    succeeded(&admin(data, &["disable-user", "bob@acme.test"]));
    assert_eq!(listed(data, "bob@acme.test").unwrap()[2], "disabled");
    let refused = admin(data, &["disable-user", "ada@acme.test"]);
    assert_eq!(refused.status.code(), Some(1));
    succeeded(&admin(data, &["enable-user", "bob@acme.test"]));
    assert_eq!(listed(data, "bob@acme.test").unwrap()[2], "active");

    // reset-password prints a new password once; it signs in.
    let first = succeeded(&admin(data, &["reset-password", "bob@acme.test"]));
    let password = first.trim();
    assert!(password.len() >= 20, "{first}");
    assert_eq!(first.lines().count(), 1, "the password alone on stdout");
    let signs_in = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = tributary_store::Store::open_in_data_dir(data)
            .await
            .unwrap();
        let user = tributary_server::auth::authenticate(&store, "bob@acme.test", password)
            .await
            .unwrap();
        store.close().await;
        user.is_some()
    });
    assert!(signs_in, "the printed password is the account's");
    let second = succeeded(&admin(data, &["reset-password", "bob@acme.test"]));
    assert_ne!(first, second);

    // remove-user; unknown accounts are one clear line.
    succeeded(&admin(data, &["remove-user", "bob@acme.test"]));
    assert!(listed(data, "bob@acme.test").is_none());
    let unknown = admin(data, &["disable-user", "bob@acme.test"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("no console account bob@acme.test"));

    // Every argument is explained.
    for (command, words) in [
        (
            "set-role",
            &["<EMAIL>", "<ROLE>", "--data-dir", "admin", "member"][..],
        ),
        ("disable-user", &["<EMAIL>", "--database-url"][..]),
        ("reset-password", &["<EMAIL>", "--master-key-file"][..]),
        ("list-users", &["<TENANT>"][..]),
        ("remove-user", &["<EMAIL>"][..]),
    ] {
        let help = text(&tributary(&["admin", command, "--help"]).stdout);
        for word in words {
            assert!(
                help.contains(word),
                "admin {command} --help explains {word}: {help}"
            );
        }
    }
}

#[test]
fn demo_runs_again_on_its_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let run = || {
        tributary(&[
            "demo",
            "--users",
            "4",
            "--messages-per-user",
            "20",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--exit-when-synced",
            "--json",
        ])
    };
    let first = run();
    assert!(first.status.success(), "{}", text(&first.stderr));
    let again = run();
    let stderr = text(&again.stderr);
    assert!(again.status.success(), "the second run failed: {stderr}");
    assert!(!stderr.contains("already exists"), "{stderr}");
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["ground_truth"]["equal"], true, "{again:#}");
    assert_eq!(
        first["logins"][0]["email"], again["logins"][0]["email"],
        "the same admin login, with this run's password"
    );
}

#[test]
fn serve_on_an_empty_data_directory_says_how_to_create_the_first_admin() {
    use std::io::BufRead;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-worker",
            "--data-dir",
            dir,
        ])
        .env("TRIBUTARY_LOG", "warn")
        .env_remove("TRIBUTARY_DATABASE_URL")
        .env_remove("TRIBUTARY_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Everything before the "console at" line, which serve prints last.
    let mut said = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("Tributary console at") {
            break;
        }
        said.push_str(&line);
        said.push('\n');
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(said.contains("No console account exists yet"), "{said}");
    assert!(
        said.contains(&format!(
            "tributary admin create-tenant acme --name \"Acme Inc\" --data-dir {dir}"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "tributary admin create-user acme you@example.com --role admin --data-dir {dir}"
        )),
        "{said}"
    );
}
