//! runc's commands over lonely's core. Wording of the errors engines match on is runc's
//! ("does not exist", "container not running", "is not stopped").

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use lonely_core::container::{self, failure::Failure};
use serde_json::{json, Map, Value};

use crate::cli::{Global, Parsed};
use crate::config;
use crate::hooks::{self, Stage};
use crate::state::{self, Dir};

type Result<T> = std::result::Result<T, String>;

pub fn run(p: &Parsed) -> Result<i32> {
    let root = p
        .global
        .root
        .clone()
        .unwrap_or_else(|| state::DEFAULT_ROOT.into());
    match p.command.as_str() {
        "version" => {
            println!(
                "lonely-runtime version {}\nspec: 1.2.0",
                env!("CARGO_PKG_VERSION")
            );
            Ok(0)
        }
        "help" => {
            println!("usage: lonely-runtime [--root DIR] [--log FILE] [--log-format json] COMMAND\ncommands: create start state kill delete exec ps pause resume update events list features run");
            Ok(0)
        }
        "create" => create(p, &root)
            .map(|_| 0)
            .inspect_err(|_| forget_console_socket(p)),
        "run" => {
            let dir = create(p, &root).inspect_err(|_| forget_console_socket(p))?;
            start(&p.global, &dir)?;
            wait_gone(&dir.read()?, None);
            delete(&p.global, &dir, true)?;
            Ok(0)
        }
        "start" => start(&p.global, &dir_of(p, &root)?).map(|_| 0),
        "state" => {
            let dir = dir_of(p, &root)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state::oci_state(&dir, &dir.read()?))
                    .unwrap_or_default()
            );
            Ok(0)
        }
        "kill" => kill(p, &root).map(|_| 0),
        "delete" => {
            let dir = dir_of(p, &root)?;
            if !dir.exists() {
                // `delete --force` of an id already deleted succeeds (containerd retries with it).
                return if p.has("force") {
                    Ok(0)
                } else {
                    Err(format!("container \"{}\" does not exist", dir.id()))
                };
            }
            delete(&p.global, &dir, p.has("force")).map(|_| 0)
        }
        "ps" => {
            let dir = dir_of(p, &root)?;
            let s = dir.read()?;
            let pids = processes(&s);
            if p.flag("format") == Some("json") {
                println!("{}", json!(pids));
            } else {
                println!("PID");
                for pid in pids {
                    println!("{pid}");
                }
            }
            Ok(0)
        }
        "list" => list(&root, p.flag("format") == Some("json")).map(|_| 0),
        "features" => {
            println!(
                "{}",
                serde_json::to_string_pretty(&features()).unwrap_or_default()
            );
            Ok(0)
        }
        "exec" => exec(p, &root).inspect_err(|_| forget_console_socket(p)),
        "update" => update(p, &dir_of(p, &root)?).map(|_| 0),
        "pause" => freeze(&dir_of(p, &root)?, true).map(|_| 0),
        "resume" => freeze(&dir_of(p, &root)?, false).map(|_| 0),
        "events" => crate::events::events(p, &dir_of(p, &root)?),
        other => Err(format!("unknown command {other:?} (lonely-runtime help)")),
    }
}

fn dir_of(p: &Parsed, root: &Path) -> Result<Dir> {
    let id = p
        .operands
        .first()
        .ok_or_else(|| format!("\"{}\" requires a container id", p.command))?;
    Dir::of(root, id)
}

pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_nanos()
    )
}

fn failure(e: &container::start::StartError) -> String {
    Failure::from(e).message
}

/// `create`: PID 1 set up and waiting on exec.fifo; its pid in `--pid-file`; with a terminal
/// the pty master sent over `--console-socket`.
fn create(p: &Parsed, root: &Path) -> Result<Dir> {
    let dir = dir_of(p, root)?;
    if dir.exists() {
        return Err(format!("container with id exists: {}", dir.id()));
    }
    let bundle = std::fs::canonicalize(p.flag("bundle").unwrap_or("."))
        .map_err(|e| format!("bundle: {e}"))?;
    let converted = config::load(&bundle).map_err(|e| e.to_string())?;
    for note in &converted.notes {
        crate::log::record(&p.global, "warning", note);
    }
    find_program(&converted.spec)?;
    std::fs::create_dir_all(root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
    std::fs::create_dir(&dir.path).map_err(|e| format!("mkdir {}: {e}", dir.path.display()))?;
    let made = (|| -> Result<()> {
        let fifo = dir.fifo();
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
        // O_RDWR: opening does not wait for a writer, and PID 1 then blocks in read until `start`.
        let hold = nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("open {}: {e}", fifo.display()))?;
        let mut spec = converted.spec.clone();
        let obj = spec.as_object_mut().expect("an object");
        obj.insert("detached".into(), json!(true));
        obj.insert("held".into(), json!(true));
        obj.insert("holdFd".into(), json!(hold.as_raw_fd()));
        // The shim's to reap (a PID 1 killed before we exit too), and no reaper thread to start.
        obj.insert("unreaped".into(), json!(true));
        let parsed = lonely_core::spec::parse(&spec.to_string()).map_err(|e| e.to_string())?;
        let running =
            container::start::start(&parsed, Box::new(|_| {})).map_err(|e| failure(&e))?;
        drop(hold);
        // The state first: from here on a failure deletes the container (kills PID 1).
        let start =
            container::foreign::start_time(running.pid).ok_or("PID 1 ended during create")?;
        let mut s = Map::new();
        s.insert("id".into(), json!(dir.id()));
        s.insert("pid".into(), json!(running.pid));
        s.insert("lonelyStart".into(), json!(start));
        s.insert("bundle".into(), json!(bundle.display().to_string()));
        s.insert(
            "rootfs".into(),
            converted.spec.get("rootfs").cloned().unwrap_or(json!("")),
        );
        s.insert("created".into(), json!(rfc3339_now()));
        s.insert(
            "annotations".into(),
            Value::Object(converted.annotations.clone()),
        );
        let cgroups: Vec<String> = running
            .cgroups
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        s.insert("cgroups".into(), json!(cgroups));
        s.insert("spec".into(), converted.spec.clone());
        if let Some(h) = &converted.hooks {
            s.insert("hooks".into(), h.clone());
        }
        let hooks = hooks::from_state(&s);
        let create_stages = [
            Stage::Prestart,
            Stage::CreateRuntime,
            Stage::CreateContainer,
        ];
        let has_create_hooks = hooks
            .as_ref()
            .is_some_and(|h| create_stages.iter().any(|st| !st.of(h).is_empty()));
        // `creating` until the create-time hooks are done: `start` must not overtake them.
        if has_create_hooks {
            s.insert("creating".into(), json!(true));
        }
        dir.write(&s)?;
        if parsed.tty {
            let master = running.stdio[1]
                .as_ref()
                .ok_or("no terminal came back from the container")?;
            let socket = p
                .flag("console-socket")
                .ok_or("process.terminal needs --console-socket")?;
            send_console(socket, master)?;
        }
        for stage in create_stages {
            hooks::run(
                stage,
                hooks.as_ref(),
                &hook_state(&dir, &s, "creating"),
                running.pid,
            )?;
        }
        // One write when there is nothing to wait for: each costs a file and a rename.
        if has_create_hooks {
            s.remove("creating");
            dir.write(&s)?;
        }
        // Last, as runc: an engine that waits for the pid file finds a container ready to start.
        if let Some(pid_file) = p.flag("pid-file") {
            std::fs::write(pid_file, running.pid.to_string())
                .map_err(|e| format!("write {pid_file}: {e}"))?;
        }
        Ok(())
    })();
    if let Err(e) = made {
        if dir.exists() {
            let _ = delete(&p.global, &dir, true);
        }
        let _ = std::fs::remove_dir_all(&dir.path);
        return Err(e);
    }
    Ok(dir)
}

/// The command must exist in the root at create, as runc checks it (its exec waits for
/// `start`, when an engine no longer expects a "not found"). Looked up inside the root, or in
/// the source of the bind mount that will cover its path (podman's --init: catatonit bound at
/// /run/podman-init, which the image does not have).
fn find_program(spec: &Value) -> Result<()> {
    let argv0 = spec["argv"][0].as_str().unwrap_or_default();
    let root = spec["rootfs"].as_str().unwrap_or("/");
    let env: Vec<String> = spec["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect();
    // The same list the child will try (the planner's).
    let candidates = lonely_core::planner::exec::search_path(argv0, &env);
    let rootfd = nix::fcntl::open(
        root,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open rootfs {root}: {e}"))?;
    let binds: Vec<(&str, &str)> = spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "bind")
        .filter_map(|m| Some((m["target"].as_str()?, m["source"].as_str()?)))
        .collect();
    // The innermost bind over `c` (the last of equals: it is mounted over the others).
    let bound = |c: &str| -> Option<std::path::PathBuf> {
        binds
            .iter()
            .filter_map(|(target, source)| {
                let target = target.trim_end_matches('/');
                let rest = c.strip_prefix(target)?;
                // Not join(""): a file's path with a trailing slash does not exist.
                let host = match rest.strip_prefix('/') {
                    None if rest.is_empty() => Path::new(source).to_owned(),
                    None => return None, // /run/podman-initx is not under /run/podman-init
                    Some(below) => Path::new(source).join(below),
                };
                Some((target.len(), host))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, host)| host)
    };
    let found = candidates.iter().any(|c| {
        if let Some(host) = bound(c) {
            return host.exists();
        }
        let rel = std::ffi::CString::new(c.trim_start_matches('/')).unwrap_or_default();
        match lonely_core::sys::openat2(
            rootfd.as_raw_fd(),
            &rel,
            libc::O_PATH,
            libc::RESOLVE_IN_ROOT,
        ) {
            Ok(fd) => {
                unsafe { libc::close(fd) };
                true
            }
            Err(_) => false,
        }
    });
    if found {
        Ok(())
    } else if argv0.contains('/') {
        Err(format!(
            "exec: \"{argv0}\": stat {argv0}: no such file or directory"
        ))
    } else {
        Err(format!(
            "exec: \"{argv0}\": executable file not found in $PATH"
        ))
    }
}

/// Until the engine has sized the terminal, at most 100 ms: podman queues its resize before
/// the exec starts, and conmon applies it one turn of its loop after it took the master (runc
/// wins that race with the rest of its setup). An engine that sends no size waits 100 ms.
fn await_window_size(master: &OwnedFd) {
    for _ in 0..100 {
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        if r != 0 || ws.ws_row != 0 || ws.ws_col != 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A failed create/exec that never connected to `--console-socket`: its socket file goes, as
/// the engine would have removed it on the connection (conmon unlinks its
/// /tmp/conmon-term.XXXXXX only when it accepts one; runc always connects before it fails).
/// Already gone (the engine had the terminal): nothing to do.
fn forget_console_socket(p: &Parsed) {
    if let Some(path) = p.flag("console-socket") {
        let _ = std::fs::remove_file(path);
    }
}

/// Sends the pty master to the engine's console socket (SCM_RIGHTS), as runc does.
fn send_console(path: &str, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{
        connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
        UnixAddr,
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("console socket: {e}"))?;
    let addr = UnixAddr::new(path).map_err(|e| format!("console socket {path}: {e}"))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| format!("connect {path}: {e}"))?;
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("send the terminal to {path}: {e}"))?;
    Ok(())
}

/// The state a hook reads on its stdin, with the status of its stage.
fn hook_state(dir: &Dir, s: &Map<String, Value>, status: &str) -> Value {
    let mut state = state::oci_state(dir, s);
    state["status"] = json!(status);
    if status != "stopped" {
        state["pid"] = s.get("pid").cloned().unwrap_or(json!(0));
    }
    state
}

fn start(global: &Global, dir: &Dir) -> Result<()> {
    let s = dir.read()?;
    match state::status(dir, &s) {
        "created" => {}
        "stopped" => return Err("cannot start a container that has stopped".into()),
        other => return Err(format!("cannot start an already {other} container")),
    }
    let hooks = hooks::from_state(&s);
    let pid = state::live_pid(&s).unwrap_or(0);
    if let Err(e) = hooks::run(
        Stage::StartContainer,
        hooks.as_ref(),
        &hook_state(dir, &s, "created"),
        pid,
    ) {
        // A failed startContainer hook: the command never runs (runc's way: the container goes).
        let _ = delete(global, dir, true);
        return Err(e);
    }
    let fifo = dir.fifo();
    // Non-blocking: PID 1 holds the fifo open, so this only fails if it is gone.
    let fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {}: {e}", fifo.display()))?;
    nix::unistd::write(&fd, b"s").map_err(|e| format!("start: {e}"))?;
    let _ = std::fs::remove_file(&fifo);
    if hooks
        .as_ref()
        .is_some_and(|h| !Stage::Poststart.of(h).is_empty())
    {
        wait_exec(pid);
    }
    // After the command started: a failure is a warning, the container runs on.
    for e in hooks::run_each(
        Stage::Poststart,
        hooks.as_ref(),
        &hook_state(dir, &s, "running"),
        pid,
    ) {
        crate::log::record(global, "warning", &e);
    }
    Ok(())
}

/// Until PID 1 has exec'd the command (poststart hooks run after it is executed, the spec
/// says): its exe is then no longer lonely-init's memfd. At most a second; a gone PID 1 ends it.
fn wait_exec(pid: i32) {
    for _ in 0..500 {
        match std::fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(exe) if exe.to_string_lossy().starts_with("/memfd:lonely-init") => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            _ => return,
        }
    }
}

fn signal_number(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    nix::sys::signal::Signal::iterator()
        .find(|sig| sig.as_str().strip_prefix("SIG") == Some(name))
        .map(|sig| sig as i32)
        .ok_or_else(|| format!("invalid signal {s:?}"))
}

fn kill(p: &Parsed, root: &Path) -> Result<()> {
    let dir = dir_of(p, root)?;
    let s = dir.read()?;
    let sig = signal_number(p.operands.get(1).map_or("SIGTERM", String::as_str))?;
    let start = s.get("lonelyStart").and_then(Value::as_u64).unwrap_or(0);
    // The list first, PID 1 signalled first: once the others die, PID 1 may end on its own.
    let others = if p.has("all") {
        processes(&s)
    } else {
        Vec::new()
    };
    let Some(pid) = state::live_pid(&s) else {
        // runc's `kill --all` of a stopped container: what is left in its cgroup (a shared PID
        // namespace outlives PID 1; the shim sends this once PID 1 has exited).
        if !p.has("all") {
            return Err("container not running".into());
        }
        for other in others {
            unsafe { libc::kill(other, sig) };
        }
        return Ok(());
    };
    if !container::foreign::signal(pid, start, sig) && !p.has("all") {
        return Err("container not running".into());
    }
    for other in others.into_iter().filter(|o| *o != pid) {
        unsafe { libc::kill(other, sig) };
    }
    Ok(())
}

/// The container's processes (PID 1 first, if alive): those in its cgroup; without one, those
/// in PID 1's PID namespace if it is the container's own, else PID 1 alone. A joined namespace
/// (a pod's, shared with its sandbox and the other containers) is not the container's: every
/// process in it would include the sandbox's pause.
fn processes(s: &Map<String, Value>) -> Vec<i32> {
    let pid1 = state::live_pid(s);
    let in_cgroup = s
        .get("cgroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|d| std::fs::read_to_string(Path::new(d).join("cgroup.procs")).ok());
    let mut pids: Vec<i32> = match (in_cgroup, pid1) {
        (Some(text), _) => text.lines().filter_map(|l| l.trim().parse().ok()).collect(),
        (None, None) => Vec::new(),
        (None, Some(pid)) => {
            let spec = s.get("spec");
            let own = spec.and_then(|v| v["namespaces"]["pid"].as_bool()) == Some(true)
                && spec.is_some_and(|v| v["joinPaths"]["pid"].is_null());
            if own {
                processes_of(pid)
            } else {
                vec![pid]
            }
        }
    };
    pids.sort_by_key(|p| (Some(*p) != pid1, *p));
    pids.dedup();
    pids
}

/// Host pids of the processes in the PID namespace of `pid1` (PID 1 first).
fn processes_of(pid1: i32) -> Vec<i32> {
    let ns = std::fs::read_link(format!("/proc/{pid1}/ns/pid")).ok();
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.retain(|p| {
        *p == pid1 || (ns.is_some() && std::fs::read_link(format!("/proc/{p}/ns/pid")).ok() == ns)
    });
    pids.sort_by_key(|p| (*p != pid1, *p));
    pids
}

/// Waits until PID 1 is gone (or a zombie), at most `limit`.
fn wait_gone(s: &Map<String, Value>, limit: Option<std::time::Duration>) -> bool {
    let deadline = limit.map(|l| std::time::Instant::now() + l);
    while state::live_pid(s).is_some() {
        if deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

fn delete(global: &Global, dir: &Dir, force: bool) -> Result<()> {
    let s = dir.read()?;
    let status = state::status(dir, &s);
    if status != "stopped" {
        if !force {
            return Err(format!(
                "cannot delete container {} that is not stopped: {status}",
                dir.id()
            ));
        }
        // A frozen task takes SIGKILL only once thawed.
        if let Some((file, v2)) = state::freezer(&s).filter(|_| status == "paused") {
            let _ = std::fs::write(file, if v2 { "0" } else { "THAWED" });
        }
        if let (Some(pid), Some(start)) = (
            state::live_pid(&s),
            s.get("lonelyStart").and_then(Value::as_u64),
        ) {
            for other in processes(&s) {
                unsafe { libc::kill(other, libc::SIGKILL) };
            }
            container::foreign::signal(pid, start, libc::SIGKILL);
        }
        wait_gone(&s, Some(std::time::Duration::from_secs(10)));
    }
    // What outlived PID 1 in its cgroup (a shared PID namespace), as runc's destroy: else the
    // cgroup stays busy and, in a pod, the processes run on under the sandbox's pause.
    for other in processes(&s) {
        unsafe { libc::kill(other, libc::SIGKILL) };
    }
    for cg in s
        .get("cgroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        // A cgroup goes with rmdir once its last process (a zombie included) is reaped.
        for _ in 0..200 {
            if std::fs::remove_dir(cg).is_ok() || !Path::new(cg).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    // Once the container is gone; a failure is a warning (the spec's poststop rule).
    for e in hooks::run_each(
        Stage::Poststop,
        hooks::from_state(&s).as_ref(),
        &hook_state(dir, &s, "stopped"),
        0,
    ) {
        crate::log::record(global, "warning", &e);
    }
    std::fs::remove_dir_all(&dir.path).map_err(|e| format!("remove {}: {e}", dir.path.display()))
}

fn list(root: &Path, as_json: bool) -> Result<()> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let Ok(dir) = Dir::of(root, &entry.file_name().to_string_lossy()) else {
            continue;
        };
        if let Ok(s) = dir.read() {
            all.push(state::oci_state(&dir, &s));
        }
    }
    if as_json {
        println!("{}", Value::Array(all));
    } else {
        println!("ID\tPID\tSTATUS\tBUNDLE");
        for s in all {
            println!(
                "{}\t{}\t{}\t{}",
                s["id"].as_str().unwrap_or(""),
                s["pid"],
                s["status"].as_str().unwrap_or(""),
                s["bundle"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `exec`: a process in the running container (its namespaces, cgroup, privileges from
/// `--process`), through the same join as the library's `exec`.
fn exec(p: &Parsed, root: &Path) -> Result<i32> {
    let dir = dir_of(p, root)?;
    let s = dir.read()?;
    let pid = state::live_pid(&s).ok_or("container not running")?;
    let mut spec = s
        .get("spec")
        .cloned()
        .ok_or("the container's state has no spec")?;
    let obj = spec.as_object_mut().ok_or("bad state")?;
    if let Some(file) = p.flag("process") {
        let text = std::fs::read_to_string(file).map_err(|e| format!("read {file}: {e}"))?;
        let process: oci_spec::runtime::Process =
            serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
        let mut base = oci_spec::runtime::Spec::default();
        base.set_process(Some(process));
        base.set_root(Some(oci_spec::runtime::Root::default()));
        let converted = config::convert(&base, Path::new("/")).map_err(|e| e.to_string())?;
        for key in [
            "argv",
            "env",
            "cwd",
            "uid",
            "gid",
            "groups",
            "tty",
            "capabilities",
            "capabilitySets",
            "oomScoreAdj",
            "noNewPrivileges",
            "rlimits",
        ] {
            if let Some(v) = converted.spec.get(key) {
                obj.insert(key.into(), v.clone());
            }
        }
    } else if p.operands.len() > 1 {
        obj.insert("argv".into(), json!(p.operands[1..]));
        obj.insert("tty".into(), json!(p.has("tty")));
    } else {
        return Err("exec needs --process FILE or a command".into());
    }
    obj.insert("join".into(), json!(pid));
    obj.insert(
        "joinStart".into(),
        s.get("lonelyStart").cloned().unwrap_or(json!(0)),
    );
    obj.insert(
        "joinCgroups".into(),
        s.get("cgroups").cloned().unwrap_or(json!([])),
    );
    for key in ["held", "holdFd", "limits", "mounts", "image"] {
        obj.remove(key);
    }
    // The engine's shim reaps it (a subreaper): it must outlive this process.
    obj.insert("detached".into(), json!(true));
    // --detach: not reaped here either, or a quick command's exit never reaches the shim.
    obj.insert("unreaped".into(), json!(p.has("detach")));
    // With a terminal the command waits until the engine has the pty master (runc's order):
    // conmon sets the window size on it once it has it, and reads nothing before.
    let hold = if obj.get("tty") == Some(&json!(true)) {
        // Held, lonely-init execs the command: a missing one is found here first, in the
        // container's root as its mounts show it, to fail as runc does ("not found", 127).
        find_program(&json!({
            "argv": obj.get("argv"),
            "env": obj.get("env"),
            "rootfs": format!("/proc/{pid}/root"),
        }))?;
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        obj.insert("holdFd".into(), json!(read.as_raw_fd()));
        Some((read, write))
    } else {
        None
    };
    let parsed = lonely_core::spec::parse(&spec.to_string()).map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel();
    let running = container::start::start(
        &parsed,
        Box::new(move |exit| {
            let _ = tx.send(exit);
        }),
    )
    .map_err(|e| failure(&e))?;
    // Ours is the write end alone: EOF (this process gone before the release) is "never run".
    let release = hold.map(|(_read, write)| write);
    if parsed.tty {
        let master = running.stdio[1]
            .as_ref()
            .ok_or("no terminal came back from the container")?;
        send_console(
            p.flag("console-socket")
                .ok_or("a terminal needs --console-socket")?,
            master,
        )?;
    }
    if let Some(pid_file) = p.flag("pid-file") {
        std::fs::write(pid_file, running.pid.to_string())
            .map_err(|e| format!("write {pid_file}: {e}"))?;
    }
    if let Some(release) = release {
        if let Some(master) = running.stdio[1].as_ref() {
            await_window_size(master);
        }
        nix::unistd::write(&release, b"s").map_err(|e| format!("start the exec: {e}"))?;
    }
    if p.has("detach") {
        return Ok(0);
    }
    let exit = rx
        .recv()
        .map_err(|_| "the exec's exit was lost".to_string())?;
    Ok(exit.code.unwrap_or_else(|| 128 + exit.signal.unwrap_or(0)))
}

/// `update --resources FILE|- ID`: new `linux.resources` (JSON) written into the container's
/// cgroup files, in this host's names, each into the recorded directory that has the file.
fn update(p: &Parsed, dir: &Dir) -> Result<()> {
    let s = dir.read()?;
    if state::live_pid(&s).is_none() {
        return Err("container not running".into());
    }
    let text = match p.flag("resources") {
        Some("-") | None => std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("read the resources: {e}"))?,
        Some(file) => std::fs::read_to_string(file).map_err(|e| format!("read {file}: {e}"))?,
    };
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_str(&text).map_err(|e| format!("resources: {e}"))?;
    let mut notes = Vec::new();
    let files = crate::resources::files(&resources, crate::resources::host_version(), &mut notes)
        .map_err(|e| e.to_string())?;
    for note in notes {
        crate::log::record(&p.global, "warning", &note);
    }
    let dirs: Vec<std::path::PathBuf> = s
        .get("cgroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(std::path::PathBuf::from))
        .collect();
    // Device rules are create-time only (runc's update leaves them too).
    for (file, value) in files.iter().filter(|(f, _)| !f.starts_with("devices.")) {
        let target = dirs
            .iter()
            .map(|d| d.join(file))
            .find(|f| f.exists())
            .ok_or_else(|| format!("update: the container has no cgroup with `{file}` (give it linux.cgroupsPath at create)"))?;
        std::fs::write(&target, value)
            .map_err(|e| format!("write {} ({value}): {e}", target.display()))?;
    }
    Ok(())
}

/// `pause`/`resume`: the container's freezer (v1 `freezer.state`, v2 `cgroup.freeze`), waited
/// on until the kernel reports it done.
fn freeze(dir: &Dir, frozen: bool) -> Result<()> {
    let s = dir.read()?;
    match (state::status(dir, &s), frozen) {
        ("running", true) | ("paused", false) => {}
        (status, true) => return Err(format!("cannot pause a container that is {status}")),
        (status, false) => {
            return Err(format!(
                "cannot resume a container that is {status}, not paused"
            ))
        }
    }
    let (file, value, done) = state::freezer(&s)
        .map(|(file, v2)| match (v2, frozen) {
            (true, true) => (file, "1", "1"),
            (true, false) => (file, "0", "0"),
            (false, true) => (file, "FROZEN", "FROZEN"),
            (false, false) => (file, "THAWED", "THAWED"),
        })
        .ok_or("pause needs a freezer cgroup: give the container linux.cgroupsPath")?;
    std::fs::write(&file, value).map_err(|e| format!("write {}: {e}", file.display()))?;
    // v1 goes FREEZING first; v2's cgroup.events says `frozen 1` once every task is stopped.
    for _ in 0..1000 {
        if state::frozen_as(&file) == Some(done.to_owned()) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Err(format!(
        "{}: the kernel did not finish ({value})",
        file.display()
    ))
}

/// The OCI runtime features document (runtime-spec features.md).
fn features() -> Value {
    let caps = lonely_core::security::names(u64::MAX);
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": [],
        "mountOptions": ["bind", "rbind", "ro", "rw"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": { "enabled": true },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
        },
        "annotations": { "org.opencontainers.runtime-spec.features.version": "1.2.0" },
    })
}
