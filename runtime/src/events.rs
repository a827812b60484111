//! `events`: runc's stats events, read from the container's cgroup (`--stats`: one, then exit;
//! otherwise one per `--interval`, 5s unless given, until the container stops).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::cli::Parsed;
use crate::state::{self, Dir};

type Result<T> = std::result::Result<T, String>;

pub fn events(p: &Parsed, dir: &Dir) -> Result<i32> {
    let interval = interval(p.flag("interval").unwrap_or("5s"))?;
    loop {
        let s = dir.read()?;
        if state::status(dir, &s) == "stopped" {
            return if p.has("stats") {
                Err("container not running".into())
            } else {
                Ok(0)
            };
        }
        println!(
            "{}",
            json!({ "type": "stats", "id": dir.id(), "data": stats(&s) })
        );
        if p.has("stats") {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
}

/// Go's duration forms engines pass (`5s`, `500ms`, `1m`); a bare number is seconds.
fn interval(text: &str) -> Result<Duration> {
    let bad = || format!("events --interval: invalid duration {text:?}");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    (secs > 0.0)
        .then(|| Duration::from_secs_f64(secs))
        .ok_or_else(bad)
}

/// runc's `types.Stats` fields lonely's cgroups have: CPU time, memory, pids.
fn stats(s: &Map<String, Value>) -> Value {
    let dirs: Vec<PathBuf> = s
        .get("cgroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(PathBuf::from)
        .collect();
    // Each value from the hierarchy that has it: v1 names first, then v2's.
    let first = |read: &dyn Fn(&Path) -> Option<u64>| dirs.iter().find_map(|d| read(d));
    let cpu_ns = first(&|d| {
        number(d, "cpuacct.usage")
            .or_else(|| keyed(d, "cpu.stat", "usage_usec").map(|us| us * 1000))
    });
    let usage =
        first(&|d| number(d, "memory.usage_in_bytes").or_else(|| number(d, "memory.current")));
    let limit = first(&|d| number(d, "memory.limit_in_bytes").or_else(|| number(d, "memory.max")));
    let max =
        first(&|d| number(d, "memory.max_usage_in_bytes").or_else(|| number(d, "memory.peak")));
    let failcnt =
        first(&|d| number(d, "memory.failcnt").or_else(|| keyed(d, "memory.events", "max")));
    let pids = first(&|d| number(d, "pids.current"));
    let pids_limit = first(&|d| number(d, "pids.max"));
    json!({
        "cpu": { "usage": { "total": cpu_ns.unwrap_or(0) } },
        "memory": { "usage": { "usage": usage.unwrap_or(0), "limit": limit.unwrap_or(u64::MAX), "max": max.unwrap_or(0), "failcnt": failcnt.unwrap_or(0) } },
        "pids": { "current": pids.unwrap_or(0), "limit": pids_limit.unwrap_or(0) },
    })
}

/// A file holding one number (`max`, unlimited, reads as None).
fn number(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `key N` from a flat-keyed file (cpu.stat, memory.events).
fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::interval;
    use std::time::Duration;

    #[test]
    fn go_durations_parse() {
        assert_eq!(interval("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(interval("2"), Ok(Duration::from_secs(2)));
        assert!(interval("5h").is_err() && interval("0s").is_err() && interval("x").is_err());
    }
}
