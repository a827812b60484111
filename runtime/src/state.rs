//! A container's state under `--root` (default /run/lonely-runtime): `<root>/<id>/state.json`
//! (what `state` prints, plus PID 1's start time, its identity) and `exec.fifo`, which PID 1
//! waits on from `create` to `start` (runc's model: its existence means "created").

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

pub const DEFAULT_ROOT: &str = "/run/lonely-runtime";

pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn of(root: &Path, id: &str) -> Result<Dir, String> {
        // An id becomes a directory name: nothing that could walk out of the root.
        let ok = !id.is_empty()
            && id.len() <= 1024
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
            && !id.starts_with('.');
        if !ok {
            return Err(format!("invalid container id {id:?}"));
        }
        Ok(Dir {
            path: root.join(id),
        })
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join("exec.fifo")
    }

    pub fn exists(&self) -> bool {
        self.path.join("state.json").exists()
    }

    pub fn read(&self) -> Result<Map<String, Value>, String> {
        let text = fs::read_to_string(self.path.join("state.json"))
            .map_err(|_| format!("container \"{}\" does not exist", self.id()))?;
        serde_json::from_str(&text).map_err(|e| format!("state of {}: {e}", self.id()))
    }

    pub fn write(&self, state: &Map<String, Value>) -> Result<(), String> {
        let tmp = self.path.join("state.json.tmp");
        let text = serde_json::to_string(state).map_err(|e| e.to_string())?;
        fs::write(&tmp, text).map_err(|e| format!("write {}: {e}", tmp.display()))?;
        fs::rename(&tmp, self.path.join("state.json")).map_err(|e| format!("rename state: {e}"))
    }

    pub fn id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// PID 1 of the state, if it still runs (its start time is the recorded one).
pub fn live_pid(state: &Map<String, Value>) -> Option<i32> {
    let pid = state.get("pid")?.as_i64()? as i32;
    let start = state.get("lonelyStart")?.as_u64()?;
    (lonely_core::container::foreign::start_time(pid) == Some(start)).then_some(pid)
}

/// created (PID 1 waits on the fifo), running, paused (frozen), or stopped.
pub fn status(dir: &Dir, state: &Map<String, Value>) -> &'static str {
    match live_pid(state) {
        None => "stopped",
        Some(_) if state.contains_key("creating") => "creating",
        Some(_) if dir.fifo().exists() => "created",
        Some(_)
            if freezer(state)
                .and_then(|(f, _)| frozen_as(&f))
                .is_some_and(|v| v == "FROZEN" || v == "1") =>
        {
            "paused"
        }
        Some(_) => "running",
    }
}

/// The container's freezer control file among its recorded cgroups, and whether it is v2's.
pub fn freezer(state: &Map<String, Value>) -> Option<(PathBuf, bool)> {
    let dirs = state.get("cgroups")?.as_array()?;
    dirs.iter().filter_map(Value::as_str).find_map(|d| {
        let d = Path::new(d);
        if d.join("cgroup.freeze").exists() {
            Some((d.join("cgroup.freeze"), true))
        } else if d.join("freezer.state").exists() {
            Some((d.join("freezer.state"), false))
        } else {
            None
        }
    })
}

/// What the freezer reports now: v1's freezer.state, v2's `frozen` from cgroup.events.
pub fn frozen_as(file: &Path) -> Option<String> {
    if file.ends_with("cgroup.freeze") {
        let events = fs::read_to_string(file.with_file_name("cgroup.events")).ok()?;
        return events
            .lines()
            .find_map(|l| l.strip_prefix("frozen ").map(str::to_owned));
    }
    Some(fs::read_to_string(file).ok()?.trim().to_owned())
}

/// The OCI state (runtime-spec "state"), as `runc state` prints it.
pub fn oci_state(dir: &Dir, state: &Map<String, Value>) -> Value {
    let status = status(dir, state);
    json!({
        "ociVersion": "1.2.0",
        "id": dir.id(),
        "status": status,
        "pid": if status == "stopped" { json!(0) } else { state.get("pid").cloned().unwrap_or(json!(0)) },
        "bundle": state.get("bundle").cloned().unwrap_or(json!("")),
        "rootfs": state.get("rootfs").cloned().unwrap_or(json!("")),
        "created": state.get("created").cloned().unwrap_or(json!("")),
        "annotations": state.get("annotations").cloned().unwrap_or(json!({})),
        "owner": "",
    })
}
