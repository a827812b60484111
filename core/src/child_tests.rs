//! The child's plan walker against a recording fake kernel: order, slots, failure
//! reporting and exec's errno rule, without root.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_uint};

use crate::child::{exec, setup};
use crate::plan::Op;
use crate::spec::{parse, Handles};
use crate::sys::{Sys, SysResult};
use nix::errno::Errno;

#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<String>>,
    next_fd: RefCell<c_int>,
    /// Fail the first call whose record starts with this prefix.
    fail: Option<(&'static str, Errno)>,
    exec_errnos: RefCell<Vec<Errno>>,
}

impl Recorder {
    fn record(&self, call: String) -> SysResult<()> {
        let failing = matches!(self.fail, Some((prefix, _)) if call.starts_with(prefix));
        self.calls.borrow_mut().push(call);
        match self.fail {
            Some((_, errno)) if failing => Err(errno),
            _ => Ok(()),
        }
    }
    fn fd(&self) -> c_int {
        let mut n = self.next_fd.borrow_mut();
        *n += 1;
        100 + *n
    }
}

fn s(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

impl Sys for Recorder {
    fn reset_signals(&self, _: bool) {
        let _ = self.record("reset_signals".into());
    }
    fn set_not_dumpable(&self) -> SysResult<()> {
        self.record("not dumpable".into())
    }
    fn clone_sibling(&self, _: &mut [u8], _: &dyn Fn() -> c_int) -> SysResult<c_int> {
        self.record("clone_sibling".into()).map(|_| 4242)
    }
    fn setsid(&self) -> SysResult<()> {
        self.record("setsid".into())
    }
    fn set_parent_death_signal(&self, sig: c_int) -> SysResult<()> {
        self.record(format!("pdeathsig {sig}"))
    }
    fn dup2(&self, from: c_int, to: c_int) -> SysResult<()> {
        self.record(format!("dup2 {from} {to}"))
    }
    fn set_controlling_tty(&self, fd: c_int) -> SysResult<()> {
        self.record(format!("ctty {fd}"))
    }
    fn unshare(&self, flags: c_int) -> SysResult<()> {
        self.record(format!("unshare {flags:#x}"))
    }
    fn join_cgroup(&self, procs: c_int) -> SysResult<()> {
        self.record(format!("join_cgroup {procs}"))
    }
    fn set_rlimit(&self, resource: c_int, soft: u64, hard: u64) -> SysResult<()> {
        self.record(format!("rlimit {resource} {soft} {hard}"))
    }
    fn open_pty(&self, ptmx: &CStr) -> SysResult<(c_int, c_int)> {
        self.record(format!("open_pty {}", s(ptmx)))
            .map(|_| (50, 51))
    }
    fn set_window_size(&self, master: c_int, rows: u16, cols: u16) -> SysResult<()> {
        self.record(format!("winsize {master} {rows} {cols}"))
    }
    fn send_fd(&self, sock: c_int, fd: c_int) -> SysResult<()> {
        self.record(format!("send_fd {sock} {fd}"))
    }
    fn setns(&self, fd: c_int, nstype: c_int) -> SysResult<()> {
        self.record(format!("setns {fd} {nstype:#x}"))
    }
    fn make_mounts_private(&self) -> SysResult<()> {
        self.record("private".into())
    }
    fn open_tree(&self, path: &CStr) -> SysResult<c_int> {
        self.record(format!("open_tree {}", s(path)))
            .map(|_| self.fd())
    }
    fn open_tree_fd(&self, fd: c_int) -> SysResult<c_int> {
        self.record(format!("open_tree_fd {fd}")).map(|_| self.fd())
    }
    fn open_no_symlinks(&self, path: &CStr) -> SysResult<c_int> {
        self.record(format!("open_no_symlinks {}", s(path)))
            .map(|_| self.fd())
    }
    fn file_id(&self, fd: c_int) -> SysResult<(u64, u64)> {
        self.record(format!("file_id {fd}")).map(|_| (0, 0))
    }
    fn mount_setattr(
        &self,
        fd: c_int,
        attrs: u64,
        propagation: u64,
        recursive: bool,
    ) -> SysResult<()> {
        match propagation {
            0 => self.record(format!("setattr {fd} {attrs:#x} {recursive}")),
            p => self.record(format!(
                "setattr {fd} {attrs:#x} propagation {p:#x} {recursive}"
            )),
        }
    }
    fn move_mount(&self, from: c_int, to_dir: c_int, to_path: &CStr) -> SysResult<()> {
        self.record(format!("move_mount {from} {to_dir} {}", s(to_path)))
    }
    fn fs_mount(
        &self,
        fstype: &CStr,
        _: &[(CString, Option<CString>)],
        _: u64,
    ) -> SysResult<c_int> {
        self.record(format!("fs_mount {}", s(fstype)))
            .map(|_| self.fd())
    }
    fn open_in_root(&self, root: c_int, path: &CStr, _: c_int) -> SysResult<c_int> {
        // Nothing exists yet in the fake root, except directories we open as parents.
        let p = s(path);
        self.record(format!("open_in_root {root} {p}"))?;
        let made = self
            .calls
            .borrow()
            .iter()
            .any(|c| c.ends_with(&format!(" {p}")) && c.starts_with("mkdir"));
        if p == "."
            || made
            || p.starts_with("proc/")
            || p.starts_with("sys/")
            || p.starts_with("dev/")
            || self
                .calls
                .borrow()
                .iter()
                .filter(|c| c.starts_with("open_in_root") && c.ends_with(&format!(" {p}")))
                .count()
                > 1
        {
            Ok(self.fd())
        } else {
            Err(Errno::ENOENT)
        }
    }
    fn is_dir(&self, fd: c_int) -> SysResult<bool> {
        self.record(format!("is_dir {fd}")).map(|_| true)
    }
    fn open_dir(&self, path: &CStr) -> SysResult<c_int> {
        self.record(format!("open_dir {}", s(path))).map(|_| 7)
    }
    fn mkdirat(&self, _: c_int, name: &CStr, _: u32) -> SysResult<()> {
        self.record(format!("mkdir {}", s(name)))
    }
    fn create_file_at(&self, _: c_int, name: &CStr) -> SysResult<()> {
        self.record(format!("create {}", s(name)))
    }
    fn mknodat(&self, _: c_int, name: &CStr, _: u32, dev: u64) -> SysResult<()> {
        self.record(format!("mknod {} {dev:#x}", s(name)))
    }
    fn chown_at(&self, _: c_int, name: &CStr, uid: u32, gid: u32) -> SysResult<()> {
        self.record(format!("chown {} {uid}:{gid}", s(name)))
    }
    fn symlinkat(&self, target: &CStr, _: c_int, name: &CStr) -> SysResult<()> {
        self.record(format!("symlink {} -> {}", s(name), s(target)))
    }
    fn close(&self, _: c_int) {}
    fn pivot_into(&self, root: c_int) -> SysResult<()> {
        self.record(format!("pivot {root}"))
    }
    fn chroot_into(&self, root: c_int) -> SysResult<()> {
        self.record(format!("chroot {root}"))
    }
    fn chdir(&self, path: &CStr) -> SysResult<()> {
        self.record(format!("chdir {}", s(path)))
    }
    fn verify_cwd(&self) -> SysResult<()> {
        self.record("getcwd".into())
    }
    fn sethostname(&self, name: &[u8]) -> SysResult<()> {
        self.record(format!("hostname {}", String::from_utf8_lossy(name)))
    }
    fn personality(&self, persona: u64) -> SysResult<()> {
        self.record(format!("personality {persona}"))
    }
    fn loopback_up(&self, _: &libc::ifreq) -> SysResult<()> {
        self.record("lo up".into())
    }
    fn read_byte(&self, fd: c_int) -> SysResult<()> {
        self.record(format!("read_byte {fd}"))
    }
    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult<()> {
        self.record(format!(
            "write {} {}",
            s(path),
            String::from_utf8_lossy(data)
        ))
    }
    fn set_credentials(&self, uid: u32, gid: u32, _: &[libc::gid_t], _: bool) -> SysResult<()> {
        self.record(format!("creds {uid}:{gid}"))
    }
    fn close_fds_except(&self, first: c_uint, keep: [c_int; 4]) -> SysResult<()> {
        self.record(format!("close_range {first} but {}", keep[0]))
    }
    fn is_readable(&self, fd: c_int) -> SysResult<bool> {
        self.record(format!("is_readable {fd}")).map(|_| false)
    }
    fn clone_fd(&self, fd: c_int) -> SysResult<c_int> {
        self.record(format!("clone_fd {fd}")).map(|_| self.fd())
    }
    fn open_beneath(&self, dir: c_int, path: &CStr, _: c_int) -> SysResult<c_int> {
        self.record(format!("open_beneath {dir} {}", s(path)))
            .map(|_| self.fd())
    }
    fn fchdir(&self, fd: c_int) -> SysResult<()> {
        self.record(format!("fchdir {fd}"))
    }
    fn is_null_device(&self, fd: c_int) -> SysResult<bool> {
        self.record(format!("is_null_device {fd}")).map(|_| true)
    }
    fn drop_bounding_cap(&self, cap: u32) -> SysResult<()> {
        self.record(format!("bounding drop {cap}"))
    }
    fn set_capabilities(&self, e: u64, p: u64, i: u64) -> SysResult<()> {
        self.record(format!("capset {e:#x} {p:#x} {i:#x}"))
    }
    fn clear_ambient_caps(&self) -> SysResult<()> {
        self.record("ambient clear".into())
    }
    fn raise_ambient_cap(&self, cap: u32) -> SysResult<()> {
        self.record(format!("ambient raise {cap}"))
    }
    fn keep_caps(&self) -> SysResult<()> {
        self.record("keepcaps".into())
    }
    fn write_proc(&self, path: &CStr, text: &[u8]) -> SysResult<()> {
        self.record(format!(
            "write {} {}",
            s(path),
            String::from_utf8_lossy(text)
        ))
    }
    fn set_no_new_privs(&self) -> SysResult<()> {
        self.record("no_new_privs".into())
    }
    fn load_seccomp(&self, program: &[libc::sock_filter]) -> SysResult<()> {
        self.record(format!("seccomp {}", program.len()))
    }
    fn execveat_fd(&self, fd: c_int, _: &[*const c_char], _: &[*const c_char]) -> Errno {
        let _ = self.record(format!("execveat {fd}"));
        self.exec_errnos.borrow_mut().remove(0)
    }
    fn execve(&self, path: &CStr, _: &[*const c_char], _: &[*const c_char]) -> Errno {
        let _ = self.record(format!("execve {}", s(path)));
        self.exec_errnos.borrow_mut().remove(0)
    }
}

const SPEC: &str = r#"{"argv":["sh"],"env":["PATH=/a:/b"],"cwd":"/work","hostname":"box",
    "namespaces":{"pid":true,"mount":true,"uts":true,"ipc":true,"net":true,"cgroup":true},
    "rootfs":"/","uid":1000,"gid":100}"#;

/// The plan, the calls the fake kernel saw, and the walk's outcome.
type Walk = (Vec<Op>, Vec<String>, Result<(), (usize, Errno)>);

fn walk(fail: Option<(&'static str, Errno)>) -> Walk {
    walk_spec(SPEC, fail)
}

fn walk_spec(spec: &str, fail: Option<(&'static str, Errno)>) -> Walk {
    let prepared = parse(spec)
        .unwrap()
        .prepare(&Handles {
            stdio: [0, 1, 2],
            ..Default::default()
        })
        .unwrap();
    let rec = Recorder {
        fail,
        ..Default::default()
    };
    let mut slots = vec![-1; prepared.slot_count];
    let result = setup(&rec, &prepared.plan, &mut slots);
    (prepared.plan, rec.calls.into_inner(), result)
}

#[test]
fn the_walk_isolates_then_drops_privileges_and_loads_seccomp_last() {
    let (_, calls, result) = walk(None);
    assert_eq!(result, Ok(()));
    let at = |prefix: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {calls:?}"))
    };
    assert_eq!(
        at("reset_signals"),
        0,
        "signals are reset before anything else"
    );
    assert!(at("setsid") < at("private"));
    assert!(
        at("private") < at("move_mount"),
        "mounts are private before any mount"
    );
    assert!(
        {
            let mount_ns = calls
                .iter()
                .position(|c| c == "unshare 0x20000")
                .expect("unshare CLONE_NEWNS");
            at("fchdir") < mount_ns && mount_ns < at("open_tree .")
        },
        "the rootfs is the parent's fd, entered before the mount namespace exists, never its path"
    );
    assert!(at("fs_mount proc") < at("pivot"));
    assert!(at("pivot") < at("hostname box"));
    assert!(
        at("bounding drop") < at("creds 1000:100"),
        "the bounding set shrinks while still root"
    );
    assert!(
        at("close_range 3") < at("chdir /work"),
        "no inherited fd can lead chdir out"
    );
    assert!(at("creds 1000:100") < at("chdir /work"));
    assert!(at("chdir /work") < at("getcwd") && at("getcwd") < at("capset"));
    assert_eq!(
        calls[at("capset")],
        "capset 0x0 0x0 0x0",
        "uid 1000 keeps no capability"
    );
    assert!(at("no_new_privs") < at("seccomp"));
    assert!(
        calls.last().unwrap().starts_with("seccomp"),
        "seccomp is the last step: {:?}",
        calls.last()
    );
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("seccomp")).count(),
        1,
        "the default profile is one program"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("open_beneath") && c.ends_with(" keys")),
        "masked paths are handled, beneath the container's own procfs"
    );
    assert!(
        at("open_beneath 105 null") < at("is_null_device"),
        "the mask source is checked on the fd that is used"
    );
}

#[test]
fn without_no_new_privs_the_cwd_is_verified_before_the_filter_and_entered_again_as_the_user() {
    // A profile that denies getcwd must not fail the CVE-2024-21626 check (as under crun).
    let spec = SPEC.replace(r#""gid":100"#, r#""gid":100,"noNewPrivileges":false"#);
    let (_, calls, result) = walk_spec(&spec, None);
    assert_eq!(result, Ok(()));
    let all = |prefix: &str| -> Vec<usize> {
        (0..calls.len())
            .filter(|&i| calls[i].starts_with(prefix))
            .collect()
    };
    let (chdirs, getcwd, seccomp, creds) = (
        all("chdir /work"),
        all("getcwd"),
        all("seccomp"),
        all("creds"),
    );
    assert_eq!(getcwd.len(), 1, "{calls:?}");
    assert!(chdirs[0] < getcwd[0] && getcwd[0] < seccomp[0] && seccomp[0] < creds[0]);
    assert!(
        chdirs[1] > creds[0],
        "the user's own chdir follows the credentials"
    );
}

#[test]
fn a_failing_step_stops_the_walk_and_names_its_index() {
    let (plan, calls, result) = walk(Some(("fs_mount proc", Errno::EPERM)));
    let (index, errno) = result.unwrap_err();
    assert_eq!(errno, Errno::EPERM);
    assert!(matches!(&plan[index], Op::NewFs { fstype, .. } if fstype.to_str() == Ok("proc")));
    assert_eq!(plan[index].stage().0, "mount proc");
    assert!(
        calls.last().unwrap().starts_with("fs_mount proc"),
        "nothing runs after the failure"
    );
}

#[test]
fn exec_searches_the_path_and_prefers_eacces_over_enoent() {
    let prepared = parse(SPEC)
        .unwrap()
        .prepare(&Handles {
            stdio: [0, 1, 2],
            ..Default::default()
        })
        .unwrap();
    let rec = Recorder::default();
    rec.exec_errnos.replace(vec![Errno::EACCES, Errno::ENOENT]);
    assert_eq!(exec(&rec, &prepared.exec), Errno::EACCES);
    assert_eq!(*rec.calls.borrow(), ["execve /a/sh", "execve /b/sh"]);
    let rec = Recorder::default();
    rec.exec_errnos.replace(vec![Errno::ENOEXEC]);
    assert_eq!(
        exec(&rec, &prepared.exec),
        Errno::ENOEXEC,
        "a real error stops the search"
    );
}

#[test]
fn the_terminal_is_sized_before_its_master_is_sent_and_a_failure_sends_nothing() {
    let plan = [Op::Console {
        ptmx: c"/dev/pts/ptmx".to_owned(),
        sock: 9,
        size: Some((43, 132)),
    }];
    let rec = Recorder::default();
    assert_eq!(setup(&rec, &plan, &mut [-1]), Ok(()));
    let calls = rec.calls.into_inner();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(at("winsize 50 43 132") < at("dup2 51 0"), "{calls:?}");
    assert!(at("winsize 50 43 132") < at("send_fd 9 50"), "{calls:?}");
    let failing = Recorder {
        fail: Some(("winsize", Errno::ENOTTY)),
        ..Default::default()
    };
    assert_eq!(setup(&failing, &plan, &mut [-1]), Err((0, Errno::ENOTTY)));
    let calls = failing.calls.into_inner();
    assert!(!calls.iter().any(|c| c.starts_with("send_fd")), "{calls:?}");
}
