//! Runs `tributary extract` over two public email corpora and compares the From, To and
//! Cc address sets with Python's standard library (`email.utils.getaddresses`):
//! - CPython's `test/test_email/data/msg_*.txt` of the installed `python3` (required);
//! - mail-parser's `resources/eml` from the cargo registry (skipped, with a printed
//!   reason, only when the crate source is truly absent).
//!
//! Every message must extract without a crash, and every disagreement must be one of
//! `KNOWN_DISAGREEMENTS`, which say why; a listed disagreement that no longer happens
//! fails the test too, so the list stays true.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A disagreement between Python and Tributary on one message and role: the addresses
/// only Python found and those only Tributary found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Disagreement {
    file: String,
    role: &'static str,
    python_only: Vec<String>,
    tributary_only: Vec<String>,
}

/// Python's getaddresses returns any word in address position as an "address"; the
/// capture contract needs a domain to classify an address, so Tributary reports these
/// as parse problems (checked below) instead of inventing participants.
const NOT_AN_ADDRESS: &str = "Python returns a bare word without `@` as an address; \
     Tributary reports it as a parse problem of that header";

/// A disagreement that is understood, and why it happens.
struct KnownDisagreement {
    /// Corpus-relative file name.
    file: &'static str,
    role: &'static str,
    python_only: &'static [&'static str],
    tributary_only: &'static [&'static str],
    reason: &'static str,
}

const KNOWN_DISAGREEMENTS: &[KnownDisagreement] = &[
    KnownDisagreement {
        file: "cpython/msg_05.txt",
        role: "from",
        python_only: &["foo"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
    KnownDisagreement {
        file: "cpython/msg_05.txt",
        role: "to",
        python_only: &["baz"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
    KnownDisagreement {
        file: "cpython/msg_15.txt",
        role: "to",
        python_only: &["xx"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
    KnownDisagreement {
        file: "mail-parser/malformed/019.eml",
        role: "to",
        python_only: &[],
        tributary_only: &["rimap-test@example.test"],
        reason: "the first line `Fro :uMmlti Sender <…>` is not a valid header field: Python's \
         parser ends the header block there and sees no headers at all, mail-parser skips \
         the bad field and reads the following To header",
    },
    KnownDisagreement {
        file: "mail-parser/rfc/001.eml",
        role: "from",
        python_only: &["whomever"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
    KnownDisagreement {
        file: "mail-parser/rfc/001.eml",
        role: "to",
        python_only: &["someone"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
    KnownDisagreement {
        file: "mail-parser/rfc/004.eml",
        role: "from",
        python_only: &["moderator-address"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
    KnownDisagreement {
        file: "mail-parser/rfc/004.eml",
        role: "to",
        python_only: &["recipient-list"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
    KnownDisagreement {
        file: "mail-parser/thirdparty/007.eml",
        role: "from",
        python_only: &["moderator"],
        tributary_only: &[],
        reason: NOT_AN_ADDRESS,
    },
];

const ROLES: [&str; 3] = ["from", "to", "cc"];

#[test]
fn extract_agrees_with_python_on_public_corpora() {
    let mut corpus: Vec<(String, PathBuf)> = Vec::new();
    let cpython = cpython_corpus();
    println!("CPython corpus: {}", cpython.display());
    corpus.extend(
        message_files(&cpython, "msg_", ".txt")
            .into_iter()
            .map(|path| (format!("cpython/{}", relative(&cpython, &path)), path)),
    );
    assert!(
        corpus.len() >= 40,
        "expected CPython's ~48 test messages in {}, found {}",
        cpython.display(),
        corpus.len()
    );
    match mail_parser_corpus() {
        Some(dir) => {
            println!("mail-parser corpus: {}", dir.display());
            let files = message_files(&dir, "", ".eml");
            assert!(!files.is_empty(), "no .eml files under {}", dir.display());
            corpus.extend(
                files
                    .into_iter()
                    .map(|path| (format!("mail-parser/{}", relative(&dir, &path)), path)),
            );
        }
        None => println!(
            "SKIPPED mail-parser corpus: no mail-parser 0.11 source with resources/eml in \
             the cargo registry (run `cargo fetch` to get it)"
        ),
    }
    println!("comparing {} messages", corpus.len());

    let paths: Vec<&Path> = corpus.iter().map(|(_, path)| path.as_path()).collect();
    let tributary = run_tributary(&paths);
    let python = run_python(&paths);

    let mut found = BTreeSet::new();
    for (name, path) in &corpus {
        let key = path.display().to_string();
        let ours = &tributary[&key];
        assert!(
            ours.get("error").is_none(),
            "{name}: extract failed: {}",
            ours["error"]
        );
        let theirs = &python[&key];
        for role in ROLES {
            let ours_set = tributary_addresses(ours, role);
            let theirs_set: BTreeSet<String> = string_set(&theirs[role]);
            if ours_set == theirs_set {
                continue;
            }
            let disagreement = Disagreement {
                file: name.clone(),
                role,
                python_only: theirs_set.difference(&ours_set).cloned().collect(),
                tributary_only: ours_set.difference(&theirs_set).cloned().collect(),
            };
            assert_python_only_words_are_reported(ours, &disagreement);
            found.insert(disagreement);
        }
    }

    let known: BTreeMap<Disagreement, &str> = KNOWN_DISAGREEMENTS
        .iter()
        .filter(|known| corpus.iter().any(|(name, _)| name == known.file))
        .map(|known| {
            let disagreement = Disagreement {
                file: known.file.to_owned(),
                role: known.role,
                python_only: known.python_only.iter().map(|s| s.to_string()).collect(),
                tributary_only: known.tributary_only.iter().map(|s| s.to_string()).collect(),
            };
            (disagreement, known.reason)
        })
        .collect();
    for (disagreement, reason) in &known {
        if found.contains(disagreement) {
            println!("known: {disagreement:?}: {reason}");
        }
    }
    let new: Vec<_> = found.iter().filter(|d| !known.contains_key(d)).collect();
    let stale: Vec<_> = known.iter().filter(|(d, _)| !found.contains(d)).collect();
    assert!(
        new.is_empty() && stale.is_empty(),
        "new disagreements (fix, or list with a reason): {new:#?}\n\
         listed disagreements that no longer happen (remove them): {stale:#?}"
    );
}

/// A Python-only address without `@` must show up as a problem of that header.
fn assert_python_only_words_are_reported(ours: &Value, disagreement: &Disagreement) {
    let problems: Vec<String> = ours["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|problem| problem["header"] == disagreement.role)
        .filter_map(|problem| problem["text"].as_str())
        .map(str::to_lowercase)
        .collect();
    for word in disagreement
        .python_only
        .iter()
        .filter(|address| !address.contains('@'))
    {
        assert!(
            problems.iter().any(|text| text.contains(word.as_str())),
            "{}: `{word}` in {} is neither a participant nor a reported problem: {problems:?}",
            disagreement.file,
            disagreement.role
        );
    }
}

fn tributary_addresses(line: &Value, role: &str) -> BTreeSet<String> {
    line["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|participant| participant["role"] == role)
        .filter_map(|participant| participant["address"].as_str())
        .map(str::to_owned)
        .collect()
}

fn string_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Runs the built binary once over every file; one JSON line per file, keyed by path.
fn run_tributary(paths: &[&Path]) -> BTreeMap<String, Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("extract")
        .args(paths)
        .output()
        .expect("run tributary extract");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "tributary panicked:\n{stderr}"
    );
    assert!(
        output.status.success(),
        "tributary extract failed ({}):\n{stderr}",
        output.status
    );
    json_lines_by_file(&output.stdout, paths.len(), "tributary extract")
}

fn run_python(paths: &[&Path]) -> BTreeMap<String, Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/extract/python_addresses.py");
    let output = Command::new("python3")
        .arg(script)
        .args(paths)
        .output()
        .expect("run python3 (needed for the comparison)");
    assert!(
        output.status.success(),
        "python_addresses.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_lines_by_file(&output.stdout, paths.len(), "python_addresses.py")
}

fn json_lines_by_file(stdout: &[u8], expected: usize, what: &str) -> BTreeMap<String, Value> {
    let lines: BTreeMap<String, Value> = String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{what} printed invalid JSON ({error}): {line}"));
            (value["file"].as_str().unwrap_or_default().to_owned(), value)
        })
        .collect();
    assert_eq!(lines.len(), expected, "{what}: one line per file");
    lines
}

/// CPython's email test messages, located through the installed `python3`.
fn cpython_corpus() -> PathBuf {
    let output = Command::new("python3")
        .args([
            "-c",
            "import test, os; print(os.path.dirname(test.__file__))",
        ])
        .output()
        .expect("python3 is needed to locate CPython's email test corpus");
    assert!(
        output.status.success(),
        "python3 cannot import its `test` package (install the Python test suite): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let test_dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let data = Path::new(&test_dir).join("test_email").join("data");
    assert!(
        data.is_dir(),
        "CPython's email test corpus is missing: {} does not exist",
        data.display()
    );
    data
}

/// mail-parser 0.11's `resources/eml`, located through `cargo metadata` (the exact
/// version this workspace resolves), else by scanning the registry sources.
fn mail_parser_corpus() -> Option<PathBuf> {
    from_cargo_metadata()
        .or_else(from_registry_scan)
        .filter(|dir| dir.is_dir())
}

fn from_cargo_metadata() -> Option<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).ok()?;
    metadata["packages"]
        .as_array()?
        .iter()
        .filter(|package| package["name"] == "mail-parser")
        .filter(|package| {
            package["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("0.11."))
        })
        .filter_map(|package| package["manifest_path"].as_str())
        .map(|manifest| Path::new(manifest).with_file_name("resources").join("eml"))
        .find(|dir| dir.is_dir())
}

fn from_registry_scan() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
    let registries = std::fs::read_dir(cargo_home.join("registry/src")).ok()?;
    let mut candidates: Vec<PathBuf> = registries
        .flatten()
        .flat_map(|registry| std::fs::read_dir(registry.path()).into_iter().flatten())
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("mail-parser-0.11.")
        })
        .map(|entry| entry.path().join("resources/eml"))
        .filter(|dir| dir.is_dir())
        .collect();
    candidates.sort();
    candidates.pop()
}

/// Files under `dir` (recursively) named `prefix*suffix`, sorted.
fn message_files(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .unwrap_or_else(|error| panic!("read {}: {error}", current.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                pending.push(path);
            } else if name.starts_with(prefix) && name.ends_with(suffix) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
