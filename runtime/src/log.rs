//! The `--log FILE` records engines read: runc's shape, one per line (`--log-format json`:
//! {"level","msg","time"}; otherwise logfmt). Never stderr for anything but errors: a
//! container's stderr is the runtime's.

use std::io::Write;

use crate::cli::Global;

pub fn record(global: &Global, level: &str, message: &str) {
    let Some(path) = &global.log else { return };
    let line = if global.log_json {
        serde_json::json!({ "level": level, "msg": message, "time": crate::commands::rfc3339_now() }).to_string()
    } else {
        format!("level={level} msg={message:?}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
