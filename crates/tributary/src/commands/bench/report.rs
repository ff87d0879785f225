//! The bench's one table: a row per benchmark variant, each with its figures, printed as
//! Markdown (so a run pastes into `docs/benchmarks.md` as is) and written as JSON.

use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// How a row ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum Status {
    Ok,
    /// Not measurable here (e.g. no PostgreSQL); the reason says what is missing.
    Skipped(String),
    /// The benchmark itself failed; the reason is the error.
    Failed(String),
}

/// One measured value: a machine name, a label for people, the number and its text.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: &'static str,
    pub label: &'static str,
    pub value: serde_json::Value,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// 1–6, as numbered in issue 7.
    pub number: u8,
    pub benchmark: &'static str,
    /// What was measured in this row (backend, settings, sizes).
    pub variant: String,
    pub status: Status,
    pub figures: Vec<Figure>,
    /// How to read the figures (what a number includes, why a goal is missed).
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(number: u8, benchmark: &'static str, variant: impl Into<String>) -> Self {
        Row {
            number,
            benchmark,
            variant: variant.into(),
            status: Status::Ok,
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn skipped(mut self, reason: impl Into<String>) -> Self {
        self.status = Status::Skipped(reason.into());
        self
    }

    pub fn failed(mut self, error: &anyhow::Error) -> Self {
        self.status = Status::Failed(format!("{error:#}"));
        self
    }

    /// A rate, count or duration, shown with `decimals` digits after the point.
    pub fn number(&mut self, name: &'static str, label: &'static str, value: f64, decimals: usize) {
        let text = if value.is_finite() {
            group_thousands(&format!("{value:.decimals$}"))
        } else {
            "n/a".to_owned()
        };
        let json = serde_json::Number::from_f64(value)
            .map_or(serde_json::Value::Null, serde_json::Value::Number);
        self.figures.push(Figure {
            name,
            label,
            value: json,
            text,
        });
    }

    pub fn flag(&mut self, name: &'static str, label: &'static str, value: bool) {
        self.figures.push(Figure {
            name,
            label,
            value: serde_json::Value::Bool(value),
            text: if value { "yes" } else { "no" }.to_owned(),
        });
    }

    pub fn text(&mut self, name: &'static str, label: &'static str, value: impl Into<String>) {
        let value = value.into();
        self.figures.push(Figure {
            name,
            label,
            value: serde_json::Value::String(value.clone()),
            text: value,
        });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }
}

/// Everything one `tributary bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub quick: bool,
    pub started_unix_ms: i64,
    pub seconds: f64,
    pub machine: Machine,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_gib: f64,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(
                || "unknown".to_owned(),
                |(_, model)| model.trim().to_owned(),
            );
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0);
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: memory_kib / (1024.0 * 1024.0),
        }
    }
}

impl Report {
    /// The table in Markdown: one line per figure, the row's notes after the table.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Tributary bench{}: {} ({} cores, {:.0} GiB), {:.0} s",
            if self.quick { " --quick" } else { "" },
            self.machine.cpu_model,
            self.machine.cores,
            self.machine.memory_gib,
            self.seconds
        );
        out.push('\n');
        out.push_str("| # | benchmark | variant | measure | value |\n");
        out.push_str("|---|---|---|---|---:|\n");
        for row in &self.rows {
            let head = format!("| {} | {} | {} ", row.number, row.benchmark, row.variant);
            match &row.status {
                Status::Skipped(reason) => {
                    let _ = writeln!(out, "{head}| skipped | {reason} |");
                }
                Status::Failed(reason) => {
                    let _ = writeln!(out, "{head}| FAILED | {} |", reason.replace('|', "/"));
                }
                Status::Ok => {}
            }
            for figure in &row.figures {
                let _ = writeln!(out, "{head}| {} | {} |", figure.label, figure.text);
            }
        }
        let notes: Vec<_> = self
            .rows
            .iter()
            .flat_map(|row| row.notes.iter().map(move |n| (row.number, &row.variant, n)))
            .collect();
        if !notes.is_empty() {
            out.push('\n');
            for (number, variant, note) in notes {
                let _ = writeln!(out, "- {number} ({variant}): {note}");
            }
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// `12345.6` → `12,345.6`.
fn group_thousands(number: &str) -> String {
    let (sign, rest) = number
        .strip_prefix('-')
        .map_or(("", number), |rest| ("-", rest));
    let (whole, fraction) = rest
        .split_once('.')
        .map_or((rest, None), |(w, f)| (w, Some(f)));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group_thousands("1234567.89"), "1,234,567.89");
        assert_eq!(group_thousands("123"), "123");
        assert_eq!(group_thousands("-1234"), "-1,234");
        assert_eq!(group_thousands("1000"), "1,000");
    }

    #[test]
    fn a_skipped_row_shows_its_reason() {
        let report = Report {
            quick: true,
            started_unix_ms: 0,
            seconds: 1.0,
            machine: Machine {
                cpu_model: "cpu".into(),
                cores: 2,
                memory_gib: 1.0,
            },
            rows: vec![Row::new(1, "Pipeline", "PostgreSQL").skipped("no server")],
        };
        assert!(
            report
                .markdown()
                .contains("| 1 | Pipeline | PostgreSQL | skipped | no server |")
        );
    }
}
