//! The crate's shape: `google/` and `microsoft/` never import each other, and `kit/`
//! imports neither (what both need belongs in `kit/`, `org/` or `truth.rs`).

use std::path::{Path, PathBuf};

/// The module paths a file of `module` must not name.
fn forbidden(module: &str) -> Vec<String> {
    let others: &[&str] = match module {
        "google" => &["microsoft"],
        "microsoft" => &["google", "server"],
        _ => &["google", "server", "microsoft"],
    };
    others
        .iter()
        .flat_map(|other| {
            [
                format!("crate::{other}"),
                format!("tributary_emulator::{other}"),
                format!("super::{other}"),
            ]
        })
        .collect()
}

/// The lines of `text` naming one of `paths` (a `crate::{…}` group counts too).
fn offending_lines(text: &str, paths: &[String]) -> Vec<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut found: Vec<String> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter(|line| paths.iter().any(|p| line.contains(p.as_str())))
        .map(str::to_string)
        .collect();
    for group in compact.split("crate::{").skip(1) {
        let names = group.split('}').next().unwrap_or("");
        for name in names.split(',') {
            let head = name.split("::").next().unwrap_or("");
            if paths.iter().any(|p| p == &format!("crate::{head}")) {
                found.push(format!("crate::{{{names}}}"));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_provider_modules_never_import_each_other_and_the_kit_neither() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    for module in ["google", "microsoft", "kit"] {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        assert!(!files.is_empty(), "src/{module} has sources");
        let paths = forbidden(module);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for line in offending_lines(&text, &paths) {
                offences.push(format!("{}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn the_check_sees_imports_in_every_form() {
    let paths = forbidden("microsoft");
    for text in [
        "use crate::google::quota::QuotaConfig;",
        "use crate::{\n    google::faults,\n    kit,\n};",
        "let x = tributary_emulator::server::control::Scenario::default();",
        "use super::super::google::faults;",
    ] {
        assert!(!offending_lines(text, &paths).is_empty(), "{text}");
    }
    assert!(offending_lines("// crate::google is Google's\nuse crate::kit;", &paths).is_empty());
}
