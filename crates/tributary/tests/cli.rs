//! The binary as a user meets it: `demo` on a small organization reports a capture equal
//! to the ground truth (mail and meetings), `--help` explains every command, and bad
//! input gives one clear line instead of a panic.

use std::path::Path;
use std::process::{Command, Output};
use tributary_emulator::org::meetings::MeetingStore;
use tributary_emulator::org::meetings_truth::{MeetingPolicy, MeetingsTruth};
use tributary_emulator::org::{OrgConfig, generate};

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
    assert_meetings_equal_the_truth(&summary, data.path());
    assert!(
        stderr.contains("Reading the directory"),
        "progress is shown: {stderr}"
    );
    assert!(
        data.path().join("tributary.db").exists(),
        "the data directory holds the store"
    );
}

/// The demo's meeting numbers equal the meeting truth of the organization it recorded in
/// `data`, generated again here (whole: a mixed demo's two emulators serve its halves)
/// and judged at the instant the summary counted at.
fn assert_meetings_equal_the_truth(summary: &serde_json::Value, data: &Path) {
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-organization.json")).unwrap())
            .unwrap();
    let number = |name: &str| record[name].as_u64().unwrap();
    let org = generate(&OrgConfig {
        seed: number("seed"),
        users: usize::try_from(number("users")).unwrap(),
        messages_per_user: usize::try_from(number("messages_per_user")).unwrap(),
        now_ms: record["now_ms"].as_i64().unwrap(),
    })
    .org;
    let meetings = &summary["meetings"];
    let at_ms = meetings["at_ms"]
        .as_i64()
        .expect("the summary says when it counted");
    let truth = MeetingsTruth::compute(
        &MeetingStore::generate(&org),
        MeetingPolicy::default_at(at_ms),
    );
    // The meetings are generated around the demo's "now", so a small organization
    // may have nothing ahead; it always has meetings behind.
    assert!(!truth.meetings.is_empty(), "{summary:#}");
    assert_eq!(
        summary["ground_truth"]["meetings_checked"], true,
        "{summary:#}"
    );
    assert_eq!(
        meetings["captured"].as_u64(),
        Some(truth.meetings.len() as u64),
        "{summary:#}"
    );
    assert_eq!(
        meetings["upcoming"].as_u64(),
        Some(truth.upcoming.len() as u64),
        "{summary:#}"
    );
    let next = meetings["next"].as_array().expect("the next meetings");
    assert_eq!(next.len(), truth.upcoming.len().min(3), "{summary:#}");
    // Soonest first; meetings starting together may come in either order.
    for (shown, soonest) in next.iter().zip(&truth.upcoming) {
        assert_eq!(shown["start"], soonest.start, "{summary:#}");
        let known = truth
            .upcoming
            .iter()
            .any(|m| m.start == soonest.start && shown["title"].as_str() == m.title.as_deref());
        assert!(known, "{shown} is not an upcoming meeting of the truth");
    }
}

/// `demo --provider PROVIDER --exit-when-synced --json` on a small organization: the
/// summary, and what the demo said on stderr.
fn demo(provider: &str, users: &str) -> (serde_json::Value, String) {
    let data = tempfile::tempdir().unwrap();
    let output = tributary(&[
        "demo",
        "--provider",
        provider,
        "--users",
        users,
        "--messages-per-user",
        "30",
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
    assert_eq!(summary["provider"], provider, "{summary:#}");
    assert_eq!(summary["ground_truth"]["equal"], true, "{summary:#}");
    assert_eq!(summary["ground_truth"]["differences"], 0);
    let linked = summary["members_linked"].as_u64().unwrap();
    assert_eq!(summary["links_by_status"]["idle"].as_u64(), Some(linked));
    // The demo runs on push: every synced mailbox has its provider's channels.
    assert_eq!(
        summary["push"]["on_push"].as_u64(),
        Some(linked),
        "{summary:#}"
    );
    assert!(summary["activities"].as_i64().unwrap() > 0, "{summary:#}");
    assert!(summary["messages_captured"].as_u64().unwrap() > 0);
    assert_meetings_equal_the_truth(&summary, data.path());
    (summary, stderr)
}

/// Requests the demo's emulator of `provider` answered.
fn requests_at(summary: &serde_json::Value, provider: &str) -> Option<u64> {
    summary["providers"]
        .as_array()?
        .iter()
        .find(|usage| usage["provider"] == provider)?["requests"]
        .as_u64()
}

#[test]
fn demo_on_microsoft_365_connects_the_app_with_consent_and_equals_the_ground_truth() {
    let (summary, stderr) = demo("microsoft", "6");
    let linked = summary["members_linked"].as_u64().unwrap();
    assert!(linked >= 3, "{summary:#}");
    assert_eq!(
        summary["links_by_provider"]["microsoft"].as_u64(),
        Some(linked),
        "{summary:#}"
    );
    assert!(
        requests_at(&summary, "microsoft").unwrap() > 0,
        "{summary:#}"
    );
    assert_eq!(requests_at(&summary, "google"), None, "{summary:#}");
    for step in [
        "app registration",
        "granting admin consent",
        "Reading the directory",
    ] {
        assert!(stderr.contains(step), "the demo says {step:?}: {stderr}");
    }
    // Skipped accounts are described in Microsoft's words.
    assert!(
        stderr.contains("disabled in Microsoft Entra ID (sign-in blocked)"),
        "{stderr}"
    );
    assert!(!stderr.contains("Gmail"), "{stderr}");
}

#[test]
fn demo_of_a_mixed_organization_captures_both_halves_once() {
    let (summary, _) = demo("mixed", "8");
    let at = |provider: &str| summary["links_by_provider"][provider].as_u64().unwrap_or(0);
    assert!(at("google") > 0 && at("microsoft") > 0, "{summary:#}");
    assert_eq!(
        at("google") + at("microsoft"),
        summary["members_linked"].as_u64().unwrap()
    );
    assert!(requests_at(&summary, "google").unwrap() > 0, "{summary:#}");
    assert!(
        requests_at(&summary, "microsoft").unwrap() > 0,
        "{summary:#}"
    );
}

#[test]
fn a_demo_directory_refuses_another_provider() {
    let data = tempfile::tempdir().unwrap();
    let record = serde_json::json!({
        "provider": "google", "seed": 1, "users": 4, "messages_per_user": 20, "now_ms": 0
    });
    std::fs::write(
        data.path().join("demo-organization.json"),
        record.to_string(),
    )
    .unwrap();
    let output = tributary(&[
        "demo",
        "--provider",
        "microsoft",
        "--users",
        "4",
        "--messages-per-user",
        "20",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--exit-when-synced",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--provider google"), "{stderr}");
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
    for command in ["serve", "worker"] {
        let help = text(&tributary(&[command, "--help"]).stdout);
        for flag in [
            "--microsoft-login-url",
            "--microsoft-graph-url",
            "--microsoft-ca-file",
            "TRIBUTARY_MICROSOFT_CA_FILE",
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com/v1.0",
        ] {
            assert!(
                help.contains(flag),
                "{command} --help explains {flag}: {help}"
            );
        }
    }
    let demo = text(&tributary(&["demo", "--help"]).stdout);
    for word in ["--provider", "google", "microsoft", "mixed"] {
        assert!(demo.contains(word), "demo --help explains {word}: {demo}");
    }
    let emulate = text(&tributary(&["emulate", "--help"]).stdout);
    assert!(emulate.contains("--split"), "{emulate}");
}

#[test]
fn wrong_microsoft_settings_are_named_before_anything_runs() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let plain = tributary(&[
        "worker",
        "--data-dir",
        dir,
        "--microsoft-login-url",
        "http://login.example.test",
    ]);
    assert_eq!(plain.status.code(), Some(1));
    let stderr = text(&plain.stderr);
    assert!(
        stderr.contains("--microsoft-login-url") && stderr.contains("https://"),
        "{stderr}"
    );
    let missing = data.path().join("no-such-ca.pem");
    let unreadable = tributary(&[
        "serve",
        "--no-worker",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir,
        "--microsoft-ca-file",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(unreadable.status.code(), Some(1));
    let stderr = text(&unreadable.stderr);
    assert!(
        stderr.contains("cannot read the CA file") && stderr.contains("no-such-ca.pem"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !data.path().join("tributary.db").exists(),
        "nothing was opened before the settings were checked"
    );
}

#[test]
fn an_emulator_split_naming_a_stranger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let split = dir.path().join("split.json");
    std::fs::write(&split, r#"{"microsoft": ["nobody@nowhere.example"]}"#).unwrap();
    let output = tributary(&[
        "emulate",
        "--provider",
        "microsoft",
        "--users",
        "3",
        "--messages-per-user",
        "5",
        "--listen",
        "127.0.0.1:0",
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--split",
        split.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("nobody@nowhere.example"), "{stderr}");
    let unknown = tributary(&["emulate", "--split", "alternating", "--users", "3"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("neither `alternate` nor a readable file"),
        "{}",
        text(&unknown.stderr)
    );
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
