//! CPU time and memory of a process (this one or a child), read from `/proc` so no
//! libc binding is needed. Linux only; elsewhere the figures are `None`.

use std::path::PathBuf;

/// `/proc` reports CPU times in USER_HZ ticks, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Which process: this one or another by pid.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    This,
    Child(u32),
}

impl Process {
    fn dir(self) -> PathBuf {
        match self {
            Process::This => PathBuf::from("/proc/self"),
            Process::Child(pid) => PathBuf::from(format!("/proc/{pid}")),
        }
    }

    /// User plus system CPU seconds of every thread so far.
    pub fn cpu_seconds(self) -> Option<f64> {
        stat_cpu_seconds(&std::fs::read_to_string(self.dir().join("stat")).ok()?)
    }

    /// Peak resident set size (VmHWM) in bytes.
    pub fn peak_rss_bytes(self) -> Option<u64> {
        status_kib(&self.dir(), "VmHWM:").map(|kib| kib * 1024)
    }

    pub fn rss_bytes(self) -> Option<u64> {
        status_kib(&self.dir(), "VmRSS:").map(|kib| kib * 1024)
    }
}

impl Process {
    /// Open TCP connections of this process to `port` (a database server's): its
    /// socket inodes matched in `/proc/<pid>/net/tcp` and `tcp6`.
    pub fn tcp_connections_to(self, port: u16) -> Option<usize> {
        let dir = self.dir();
        let inodes: std::collections::HashSet<String> = std::fs::read_dir(dir.join("fd"))
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|target| {
                let target = target.to_string_lossy().into_owned();
                let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
                Some(inode.to_owned())
            })
            .collect();
        let remote_port = format!(":{port:04X}");
        let count = ["net/tcp", "net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(dir.join(table)).ok())
            .map(|text| {
                text.lines()
                    .skip(1)
                    .filter(|line| {
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        // rem_address is field 2, st 3 (01 established), inode 9.
                        fields.len() > 9
                            && fields[2].ends_with(&remote_port)
                            && fields[3] == "01"
                            && inodes.contains(fields[9])
                    })
                    .count()
            })
            .sum::<usize>();
        Some(count)
    }
}

/// CPU seconds of this process's threads whose name starts with `prefix` (threads that
/// have exited are not counted, so name long-lived threads only).
pub fn threads_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim_end().starts_with(prefix))
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| stat_cpu_seconds(&stat))
        .sum()
}

/// `utime` and `stime` (fields 14 and 15) of a `stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, field 3 (state) is at index 0.
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

fn status_kib(dir: &std::path::Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join("status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Bytes of the files in `dir` whose name starts with `prefix` (a SQLite database with
/// its `-wal` and `-shm` files).
pub fn files_bytes(dir: &std::path::Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_after_an_odd_command_name() {
        let stat = "42 (tokio (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(stat_cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn this_process_has_used_some_cpu_and_memory() {
        let mut spin = 0u64;
        for i in 0..5_000_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        assert!(spin > 0);
        assert!(Process::This.cpu_seconds().is_some());
        assert!(Process::This.peak_rss_bytes().unwrap_or(0) > 0);
    }
}
