//! runc's command line: global options, then a command with its flags and operands. Flags
//! runc has that change nothing here (`--systemd-cgroup`, `--no-pivot`, `--no-new-keyring`...)
//! are accepted, so an engine's usual argv works.

use std::path::PathBuf;

#[derive(Debug, Default, Clone)]
pub struct Global {
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_json: bool,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub global: Global,
    pub command: String,
    /// `--name value` and `--name` (value "true"), by long name.
    pub flags: Vec<(String, String)>,
    pub operands: Vec<String>,
}

impl Parsed {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.flag(name).is_some()
    }
}

/// Flags that take a value, by command (short forms mapped to long ones).
const VALUED: [&str; 13] = [
    "bundle",
    "pid-file",
    "console-socket",
    "process",
    "format",
    "preserve-fds",
    "cwd",
    "env",
    "user",
    "resources",
    "criu",
    "signal",
    "interval",
];
const SHORT: [(&str, &str); 10] = [
    ("b", "bundle"),
    ("p", "process"),
    ("d", "detach"),
    ("t", "tty"),
    ("f", "format"),
    ("a", "all"),
    ("q", "quiet"),
    ("e", "env"),
    ("u", "user"),
    ("r", "resources"),
];

pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut i = 0;
    // Global options, before the command.
    while i < args.len() && args[i].starts_with('-') {
        let (name, inline) = split(&args[i]);
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("flag needs an argument: --{name}"))
        };
        match name.as_str() {
            "root" => p.global.root = Some(value()?.into()),
            "log" => p.global.log = Some(value()?.into()),
            "log-format" => p.global.log_json = value()? == "json",
            "criu" | "rootless" => drop(value()?),
            "debug" | "systemd-cgroup" => {}
            "version" | "v" => {
                p.command = "version".into();
                return Ok(p);
            }
            "help" | "h" => {
                p.command = "help".into();
                return Ok(p);
            }
            _ => return Err(format!("unknown global flag: {}", args[i])),
        }
        i += 1;
    }
    p.command = args.get(i).cloned().unwrap_or_else(|| "help".into());
    i += 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            p.operands.extend(args[i + 1..].iter().cloned());
            break;
        }
        if a.starts_with('-') && a.len() > 1 && p.operands.is_empty() {
            let (name, inline) = split(a);
            let long = SHORT
                .iter()
                .find(|(s, _)| *s == name)
                .map_or(name.clone(), |(_, l)| l.to_string());
            if VALUED.contains(&long.as_str()) {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("flag needs an argument: --{long}"))?
                    }
                };
                p.flags.push((long, v));
            } else {
                p.flags
                    .push((long, inline.unwrap_or_else(|| "true".into())));
            }
        } else {
            p.operands.push(a.clone());
        }
        i += 1;
    }
    Ok(p)
}

/// `--name=value` / `-n` → (name, value).
fn split(a: &str) -> (String, Option<String>) {
    let bare = a.trim_start_matches('-');
    match bare.split_once('=') {
        Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
        None => (bare.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn an_engines_create_parses() {
        let p = parse(&args("--root /r --log /l.json --log-format json create --bundle /b --pid-file /b/init.pid --console-socket /s id1")).unwrap();
        assert_eq!(p.global.root.as_deref(), Some(std::path::Path::new("/r")));
        assert!(p.global.log_json);
        assert_eq!(p.command, "create");
        assert_eq!(p.flag("bundle"), Some("/b"));
        assert_eq!(p.flag("console-socket"), Some("/s"));
        assert_eq!(p.operands, ["id1"]);
        let k = parse(&args("kill --all id1 9")).unwrap();
        assert!(k.has("all"));
        assert_eq!(k.operands, ["id1", "9"]);
        let e = parse(&args("exec -p /p.json -d --pid-file=/x id1")).unwrap();
        assert_eq!(
            (e.flag("process"), e.flag("detach"), e.flag("pid-file")),
            (Some("/p.json"), Some("true"), Some("/x"))
        );
    }
}
