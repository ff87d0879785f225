//! A uniquely named PostgreSQL database for one benchmark, dropped afterwards. The
//! binary has no SQL driver of its own (the store owns every query), so the database is
//! created and dropped with `psql`, which comes with every PostgreSQL installation.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Created with [`TempDatabase::create`]; dropping it drops the database.
pub struct TempDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TempDatabase {
    /// `Err` with the reason (for "skipped: …") when the server or `psql` is missing.
    pub fn create(admin_url: &str) -> Result<Self, String> {
        reachable(admin_url)?;
        let name = unique_name();
        // The name is made here from a fixed prefix, digits and underscores.
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        Ok(TempDatabase {
            admin_url: admin_url.to_owned(),
            url: database_url(admin_url, &name),
            name,
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let dropped = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        if let Err(error) = dropped {
            eprintln!(
                "warning: could not drop the bench database {}: {error}",
                self.name
            );
        }
    }
}

/// A quick TCP check first, so an absent server is reported in two seconds.
fn reachable(admin_url: &str) -> Result<(), String> {
    let host_port = admin_url
        .split_once("://")
        .map_or(admin_url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let address = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| "PostgreSQL not reachable (bad address)".to_owned())?;
    std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map(|_| ())
        .map_err(|_| "PostgreSQL not reachable".to_owned())
}

fn psql(admin_url: &str, sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            admin_url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("PostgreSQL not reachable (cannot run psql: {error})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "PostgreSQL not reachable ({})",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "tributary_bench_{}_{}_{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The admin URL with its database replaced by `name` (query parameters kept).
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_only() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "b1"),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(
            database_url("postgres://u:p@h/db?sslmode=disable", "b2"),
            "postgres://u:p@h/b2?sslmode=disable"
        );
    }

    #[test]
    fn an_unused_port_is_not_reachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let result = TempDatabase::create(&format!("postgres://x@127.0.0.1:{port}/postgres"));
        assert!(result.is_err_and(|reason| reason.contains("not reachable")));
    }
}
