//! The #[napi] surface: converts types and errors, nothing else.

use std::os::fd::IntoRawFd;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

use crate::cgroups::{self, Stats};
use crate::container::{self, Failure, StartError};
use crate::reaper::{self, Exit};
use crate::{plan, spec, terminal};

#[napi(object)]
pub struct SetupFailure {
    pub stage: String,
    pub path: Option<String>,
    pub errno: i32,
    /// The errno's name (ENOENT, EACCES...), or ERR_* when no system call failed.
    pub code: String,
    pub message: String,
    /// Set when the caller's value for this option could not be used (a RangeError in JS).
    pub option: Option<String>,
}

#[napi(object)]
pub struct Started {
    pub pid: i32,
    /// Parent ends of the pipes (or the pty master), to wrap in Node streams.
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    pub stderr: Option<i32>,
    /// Detached: PID 1's start time (/proc/<pid>/stat field 22), read while it could not have been reaped.
    pub start_time: Option<f64>,
    /// Set when a setup step or exec failed: the container never ran and was reaped.
    pub failure: Option<SetupFailure>,
}

/// A cgroup's accounting (fields the host does not provide are absent).
#[napi(object)]
pub struct CgroupStats {
    pub memory_bytes: Option<f64>,
    pub memory_peak_bytes: Option<f64>,
    pub cpu_usage_us: Option<f64>,
    pub pids: Option<f64>,
    pub pids_peak: Option<f64>,
    pub oom_kills: f64,
}

impl From<Stats> for CgroupStats {
    fn from(s: Stats) -> Self {
        let f = |v: Option<u64>| v.map(|n| n as f64);
        CgroupStats {
            memory_bytes: f(s.memory_bytes),
            memory_peak_bytes: f(s.memory_peak_bytes),
            cpu_usage_us: f(s.cpu_usage_us),
            pids: f(s.pids),
            pids_peak: f(s.pids_peak),
            oom_kills: s.oom_kills as f64,
        }
    }
}

#[napi(object)]
pub struct ExitInfo {
    pub pid: i32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub user_cpu_us: f64,
    pub system_cpu_us: f64,
    pub cgroup: Option<CgroupStats>,
    pub oom_killed: bool,
}

impl From<Exit> for ExitInfo {
    fn from(e: Exit) -> Self {
        ExitInfo {
            pid: e.pid,
            exit_code: e.code,
            signal: e.signal,
            user_cpu_us: e.user_us as f64,
            system_cpu_us: e.system_us as f64,
            cgroup: e.cgroup.map(Into::into),
            oom_killed: e.oom_killed,
        }
    }
}

impl From<Failure> for SetupFailure {
    fn from(f: Failure) -> Self {
        SetupFailure {
            stage: f.stage,
            path: f.path,
            errno: f.errno,
            code: f.code,
            message: f.message,
            option: f.option.map(Into::into),
        }
    }
}

/// The reaper's way to `onExit`: a threadsafe function called on the JS thread. For a detached
/// container a weak one: waiting for its exit must not keep Node alive.
fn exit_callback(
    on_exit: &Function<ExitInfo, ()>,
    detached: bool,
) -> std::result::Result<crate::reaper::OnExit, StartError> {
    let failed = |e: Error| StartError::Callback(e.to_string());
    let builder = on_exit
        .build_threadsafe_function::<ExitInfo>()
        .callee_handled::<false>();
    Ok(if detached {
        let tsfn = builder.weak::<true>().build().map_err(failed)?;
        Box::new(move |exit| {
            tsfn.call(exit.into(), ThreadsafeFunctionCallMode::NonBlocking);
        })
    } else {
        let tsfn = builder.build().map_err(failed)?;
        Box::new(move |exit| {
            tsfn.call(exit.into(), ThreadsafeFunctionCallMode::NonBlocking);
        })
    })
}

/// Creates and starts a container from a JSON ContainerSpec. `onExit` is called once,
/// on the JS thread, when the container has been reaped. A container that did not start is
/// a `failure` (with its stage, code and, for a bad value, the option), never a throw.
#[napi]
pub fn spawn_container(spec_json: String, on_exit: Function<ExitInfo, ()>) -> Started {
    let started = spec::parse(&spec_json)
        .map_err(StartError::from)
        .and_then(|spec| container::start(&spec, exit_callback(&on_exit, spec.detached)?));
    match started {
        Ok(running) => {
            let [stdin, stdout, stderr] = running.stdio.map(|fd| fd.map(|f| f.into_raw_fd()));
            Started {
                pid: running.pid,
                stdin,
                stdout,
                stderr,
                start_time: running.start_time.map(|t| t as f64),
                failure: None,
            }
        }
        Err(e) => Started {
            pid: 0,
            stdin: None,
            stdout: None,
            stderr: None,
            start_time: None,
            failure: Some(Failure::from(&e).into()),
        },
    }
}

/// Whether this process may dump core and be traced by its own uid (PR_GET_DUMPABLE): a
/// vfork-style child shares its mm, and its credential change must not leave it unset.
#[napi]
pub fn process_dumpable() -> bool {
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) == 1 }
}

/// Sends `signal` to the container's PID 1 through its pidfd. False once it has been reaped.
#[napi]
pub fn kill_container(pid: i32, signal: i32) -> Result<bool> {
    reaper::signal(pid, signal).map_err(|e| Error::from_reason(format!("pidfd_send_signal: {e}")))
}

/// Live accounting of a running container's cgroup; null without limits or once it ended.
#[napi]
pub fn container_stats(pid: i32) -> Option<CgroupStats> {
    reaper::stats(pid).map(Into::into)
}

/// The accounting of cgroup directories another process recorded (a detached container's).
#[napi]
pub fn cgroup_stats_of(dirs: Vec<String>) -> CgroupStats {
    let dirs: Vec<std::path::PathBuf> = dirs.into_iter().map(Into::into).collect();
    cgroups::stats_of(&dirs).into()
}

/// The host's cgroup mode: "unified", "legacy", "hybrid", or an error message.
#[napi]
pub fn cgroup_mode() -> String {
    match cgroups::detect() {
        Ok(h) => match h.mode {
            cgroups::Mode::Unified { .. } => "unified".into(),
            cgroups::Mode::Legacy { .. } => "legacy".into(),
            cgroups::Mode::Hybrid { .. } => "hybrid".into(),
        },
        Err(e) => e.to_string(),
    }
}

/// The most namespace fds the pool keeps ready at once (the tests' leak check bounds them).
#[napi]
pub fn namespace_pool_capacity() -> u32 {
    crate::nspool::CAPACITY as u32
}

/// Containers started and not yet reaped.
#[napi]
pub fn live_containers() -> u32 {
    reaper::live_count() as u32
}

/// The setup plan for a spec, one step per line, without running anything.
#[napi]
pub fn describe_plan(spec_json: String) -> Result<String> {
    let failed = |e: spec::SpecError| {
        let f = Failure::from(&StartError::from(e));
        Error::new(Status::InvalidArg, f.message)
    };
    let spec = spec::parse(&spec_json).map_err(failed)?;
    // Stand-ins (-1) for what a real run opens first, so that the plan lists its steps too: the
    // pool's network and IPC namespaces, the cgroup join, the parent's pidfd.
    let pooled = |wanted: bool| (wanted && !spec.namespaces.user).then_some(-1);
    let handles = spec::Handles {
        stdio: [0, 1, 2],
        netns: pooled(spec.namespaces.net && spec.join_paths.net.is_none()),
        ipcns: pooled(spec.namespaces.ipc && spec.join_paths.ipc.is_none()),
        cgroup_procs: if spec.limits.is_some() {
            vec![-1]
        } else {
            vec![]
        },
        cgroup_fs: spec
            .limits
            .as_ref()
            .map(|l| lonely_core::cgroups::planned_filesystems(l, spec.detached))
            .unwrap_or_default(),
        parent_pidfd: (!spec.detached).then_some(-1),
        ..Default::default()
    };
    let prepared = spec.prepare(&handles).map_err(failed)?;
    let clone = format!("clone: {}", plan::namespaces_of(prepared.clone_flags));
    let exec = format!("exec `{}`", spec.argv.join(" "));
    Ok(format!(
        "{clone}\n{}\n{exec}",
        plan::describe(&prepared.plan)
    ))
}

/// Sets a pty's window size (the CLI forwards its terminal's size).
#[napi]
pub fn set_window_size(fd: i32, rows: u32, cols: u32) -> Result<()> {
    let master = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    terminal::set_window_size(master, rows as u16, cols as u16)
        .map_err(|e| Error::from_reason(format!("ioctl TIOCSWINSZ: {e}")))
}

#[napi(object)]
pub struct TerminalInput {
    pub canonical: bool,
    pub eof_char: u32,
    pub unread: u32,
}

/// The pty's line mode and unread input; None once the container's side is gone.
#[napi]
pub fn terminal_input(fd: i32) -> Option<TerminalInput> {
    let master = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let s = terminal::input_state(master).ok()?;
    Some(TerminalInput {
        canonical: s.canonical,
        eof_char: s.eof_char as u32,
        unread: s.unread,
    })
}

/// Reads a file of a running container (its root, RESOLVE_IN_ROOT), on the threadpool.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn read_container_file(
    pid: i32,
    start: Option<f64>,
    path: String,
    limit: f64,
) -> AsyncTask<ReadFileTask> {
    AsyncTask::new(ReadFileTask {
        pid,
        start: start.map(|s| s as u64),
        path,
        limit: limit as u64,
    })
}

pub struct ReadFileTask {
    pid: i32,
    start: Option<u64>,
    path: String,
    limit: u64,
}

impl Task for ReadFileTask {
    type Output = Vec<u8>;
    type JsValue = Buffer;

    fn compute(&mut self) -> Result<Self::Output> {
        crate::container::files::read(self.pid, self.start, &self.path, self.limit)
            .map_err(|e| Error::from_reason(e.to_string()))
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(out.into())
    }
}

/// Writes a file of a running container (its root, RESOLVE_IN_ROOT), on the threadpool.
#[napi(ts_return_type = "Promise<void>")]
pub fn write_container_file(
    pid: i32,
    start: Option<f64>,
    path: String,
    data: Buffer,
    mode: u32,
) -> AsyncTask<WriteFileTask> {
    AsyncTask::new(WriteFileTask {
        pid,
        start: start.map(|s| s as u64),
        path,
        data: data.to_vec(),
        mode,
    })
}

pub struct WriteFileTask {
    pid: i32,
    start: Option<u64>,
    path: String,
    data: Vec<u8>,
    mode: u32,
}

impl Task for WriteFileTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<Self::Output> {
        crate::container::files::write(self.pid, self.start, &self.path, &self.data, self.mode)
            .map_err(|e| Error::from_reason(e.to_string()))
    }

    fn resolve(&mut self, _env: Env, _: Self::Output) -> Result<Self::JsValue> {
        Ok(())
    }
}

/// /proc/<pid>/stat's start time of a live process (a detached container's identity); null once gone.
#[napi]
pub fn process_start_time(pid: i32) -> Option<f64> {
    crate::container::foreign::start_time(pid).map(|t| t as f64)
}

/// Signals `pid` through a pidfd if it still started at `start` (a detached container's PID 1).
#[napi]
pub fn signal_process(pid: i32, start: f64, signal: i32) -> bool {
    crate::container::foreign::signal(pid, start as u64, signal)
}

/// The cgroup directories of a live container of this process (a detached one records them).
#[napi]
pub fn container_cgroups(pid: i32) -> Vec<String> {
    crate::reaper::cgroup_dirs(pid)
        .into_iter()
        .map(|d| d.display().to_string())
        .collect()
}
