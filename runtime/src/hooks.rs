//! OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each gets the container's state
//! on stdin, its own args and env, and at most `timeout` seconds. createRuntime/prestart,
//! poststart and poststop run here, in the runtime's namespaces; createContainer and
//! startContainer in the container's, joined through a pidfd of its PID 1 after the binary
//! was opened here (its path resolves in the runtime's namespace, as the spec asks).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};
use serde_json::Value;

/// The stages, as the spec names them and the config's fields hold them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }

    pub fn of(self, hooks: &Hooks) -> Vec<Hook> {
        #[allow(deprecated)]
        let list = match self {
            Stage::Prestart => hooks.prestart(),
            Stage::CreateRuntime => hooks.create_runtime(),
            Stage::CreateContainer => hooks.create_container(),
            Stage::StartContainer => hooks.start_container(),
            Stage::Poststart => hooks.poststart(),
            Stage::Poststop => hooks.poststop(),
        };
        list.clone().unwrap_or_default()
    }

    /// Inside the container's namespaces (pid: its PID 1), or the runtime's.
    fn inside(self) -> bool {
        matches!(self, Stage::CreateContainer | Stage::StartContainer)
    }
}

/// The hooks recorded in a container's state (`hooks`), if any.
pub fn from_state(state: &serde_json::Map<String, Value>) -> Option<Hooks> {
    serde_json::from_value(state.get("hooks")?.clone()).ok()
}

/// Runs every hook of `stage` in order; the first failure is the error (named by stage,
/// path and exit), the later ones do not run.
pub fn run(stage: Stage, hooks: Option<&Hooks>, state: &Value, pid1: i32) -> Result<(), String> {
    let Some(hooks) = hooks else { return Ok(()) };
    stage
        .of(hooks)
        .iter()
        .try_for_each(|hook| run_named(stage, hook, state, pid1))
}

/// Runs every hook of `stage`, a failing one included (the spec's poststart/poststop rule:
/// warn, and the remaining hooks and the lifecycle go on); each failure, in order.
pub fn run_each(stage: Stage, hooks: Option<&Hooks>, state: &Value, pid1: i32) -> Vec<String> {
    let Some(hooks) = hooks else { return vec![] };
    stage
        .of(hooks)
        .iter()
        .filter_map(|hook| run_named(stage, hook, state, pid1).err())
        .collect()
}

/// One hook, its failure named by stage, path and exit.
fn run_named(stage: Stage, hook: &Hook, state: &Value, pid1: i32) -> Result<(), String> {
    run_one(stage, hook, state, pid1)
        .map_err(|e| format!("{} hook {}: {e}", stage.name(), hook.path().display()))
}

/// NULL-terminated argv/envp for execveat, with the strings they point into.
struct Arrays {
    _strings: Vec<std::ffi::CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, owned alongside and never changed.
unsafe impl Send for Arrays {}
unsafe impl Sync for Arrays {}

impl Arrays {
    fn pointers(&self) -> (&[*const libc::c_char], &[*const libc::c_char]) {
        (&self.argv, &self.envp)
    }

    fn of(argv: Vec<std::ffi::CString>, envp: Vec<std::ffi::CString>) -> Arrays {
        let ptrs = |list: &[std::ffi::CString]| -> Vec<*const libc::c_char> {
            list.iter()
                .map(|a| a.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let (a, e) = (ptrs(&argv), ptrs(&envp));
        let mut strings = argv;
        strings.extend(envp);
        Arrays {
            _strings: strings,
            argv: a,
            envp: e,
        }
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn run_one(stage: Stage, hook: &Hook, state: &Value, pid1: i32) -> std::io::Result<()> {
    let args = hook.args().clone().unwrap_or_default();
    // argv and envp as C arrays, made before fork (the child only makes system calls).
    let cstrings = |list: &[String]| -> Vec<std::ffi::CString> {
        list.iter()
            .filter_map(|a| std::ffi::CString::new(a.as_bytes()).ok())
            .collect()
    };
    let env_list = hook.env().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    // Kept open until the child has exec'd: the binary and PID 1's pidfd.
    let mut held: Vec<OwnedFd> = Vec::new();
    if stage.inside() {
        let binary = std::fs::File::open(hook.path())?;
        let pidfd = pidfd_open(pid1)?;
        let (program, target) = (binary.as_raw_fd(), pidfd.as_raw_fd());
        let default_argv = vec![hook.path().display().to_string()];
        let argv_c = cstrings(if args.is_empty() {
            &default_argv
        } else {
            &args
        });
        let envp_c = cstrings(&env_list);
        let arrays = Arrays::of(argv_c, envp_c);
        let flags =
            libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET;
        // SAFETY: between fork and exec only setns, chdir and execveat, all async-signal-safe;
        // the pointer arrays are built here and only read there.
        unsafe {
            cmd.pre_exec(move || {
                let (argv, envp) = arrays.pointers();
                if libc::setns(target, flags) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The binary opened in the runtime's namespace; exec'd from its fd.
                libc::syscall(
                    libc::SYS_execveat,
                    program,
                    c"".as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
                Err(std::io::Error::last_os_error())
            });
        }
        held.push(binary.into());
        held.push(pidfd);
    }
    if let Some(first) = args.first() {
        cmd.arg0(first);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .envs(env_list.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    drop(held);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is no failure.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let limit = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(std::io::Error::other(format!(
                "{status}{}",
                if err.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", err.trim())
                }
            )));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "timed out after {} s",
                limit.unwrap_or_default().as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
