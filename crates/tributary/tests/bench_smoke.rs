//! `tributary bench --quick` as CI runs it: it exits 0, prints the table and writes it as
//! JSON with every row of issue 7. The figures are not checked (speed goals never go in
//! tests); a row may be skipped when PostgreSQL is not reachable, but none may fail.
//! Row 4 times push at both providers (issue 16): every message delivered is captured.

use std::collections::BTreeSet;
use std::process::Command;

const BENCHMARKS: [(u64, &str); 7] = [
    (1, "Pipeline"),
    (2, "Against the quota"),
    (3, "Unthrottled"),
    (4, "Incremental"),
    (5, "Idle scale"),
    (6, "Scale-out"),
    (7, "Through the product"),
];

#[test]
fn quick_bench_prints_and_writes_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["bench", "--quick", "--out"])
        .arg(&out)
        .env_remove("TRIBUTARY_CONFIG")
        .output()
        .expect("the bench starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --quick failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    assert!(
        stdout.contains("| # | benchmark | variant | measure | value |"),
        "{stdout}"
    );
    for (number, name) in BENCHMARKS {
        assert!(
            stdout.contains(&format!("| {number} | {name} |")),
            "row {number} ({name}) missing from the table:\n{stdout}"
        );
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("the JSON was written"))
            .expect("the JSON parses");
    assert_eq!(json["quick"], true);
    let rows = json["rows"].as_array().expect("rows");
    let numbers: BTreeSet<u64> = rows.iter().filter_map(|r| r["number"].as_u64()).collect();
    assert_eq!(numbers, BENCHMARKS.iter().map(|(n, _)| *n).collect());
    for row in rows {
        let kind = row["status"]["kind"].as_str().expect("a status");
        assert_ne!(kind, "failed", "a row failed: {row}");
        if kind == "ok" {
            let figures = row["figures"].as_array().expect("figures");
            assert!(!figures.is_empty(), "a row without figures: {row}");
            assert!(
                figures
                    .iter()
                    .all(|f| f["name"].is_string() && f["text"].is_string()),
                "{row}"
            );
        }
    }
    let incremental = rows.iter().find(|r| r["number"] == 4).expect("row 4");
    for provider in ["google", "microsoft"] {
        assert_push_captured_everything(incremental, provider);
    }
}

/// Row 4's push run at `provider` timed a latency and captured every message delivered.
fn assert_push_captured_everything(row: &serde_json::Value, provider: &str) {
    let figure = |name: &str| {
        row["figures"]
            .as_array()
            .and_then(|figures| figures.iter().find(|f| f["name"] == name))
            .unwrap_or_else(|| panic!("row 4 has no {name}: {row}"))
            .clone()
    };
    let p95 = figure(&format!("push_{provider}_p95_seconds"));
    assert!(
        p95["value"].as_f64().is_some_and(|s| s > 0.0),
        "push at {provider} timed nothing: {row}"
    );
    let captured = figure(&format!("push_{provider}_captured"));
    let text = captured["value"].as_str().expect("captured / delivered");
    let counts: Vec<&str> = text.split_whitespace().collect();
    assert!(
        counts.len() >= 3 && counts[1] == "/" && counts[0] == counts[2] && counts[0] != "0",
        "push at {provider} missed messages: {text}"
    );
}
