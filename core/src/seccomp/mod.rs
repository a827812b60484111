//! Seccomp: the default profile (docker's allowlist, stricter where docker is weak), emitted
//! by `compact.rs` as one BPF program, and docker/OCI JSON profiles, compiled with libseccomp.
//! Both are made in the parent; the child only loads them, as its last step before exec.

mod compact;
#[cfg(test)]
mod compact_tests;

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {0}")]
    Library(#[from] libseccomp::error::SeccompError),
    #[error("seccomp: exporting the BPF program: {0}")]
    Export(std::io::Error),
    #[error("seccomp: profile: {0}")]
    Profile(String),
    #[error("seccomp: default profile: {0}")]
    Default(String),
}

/// One BPF program (struct sock_filter[]), shared: the default is compiled once per process.
#[derive(Clone)]
pub struct Program(pub Arc<[libc::sock_filter]>);

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({} instructions)", self.0.len())
    }
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Everything a container runs with ordinarily, as docker's default profile allows it.
/// Left out on purpose: keyctl, add_key, request_key, kexec_*, open_by_handle_at,
/// name_to_handle_at, *_module, userfaultfd, io_uring_*, bpf, perf_event_open, mount,
/// umount2, pivot_root, setns, the new mount API, reboot, swapon/off, acct, the clock and
/// time setters, quotactl, lookup_dcookie, iopl/ioperm, syslog, vm86, ustat, sysfs, uselib.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "chroot",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_mempolicy",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "mbind",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_madvise",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_mempolicy",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

// The conditional rules (see compact.rs): every value is compared with the low 32 bits of its
// argument, which is all the kernel reads of an int or of a tty request.
/// Namespace flags of clone/unshare (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
const NAMESPACE_FLAGS: u32 = 0x7E02_0000;
const AF_ALG: u32 = 38;
const AF_VSOCK: u32 = 40;
/// The personalities docker allows (PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE variants, query).
const PERSONALITIES: &[u32] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541C;

fn syscall(name: &str) -> Option<ScmpSyscall> {
    // Names this libseccomp or architecture does not know are simply not allowed.
    ScmpSyscall::from_name(name).ok()
}

/// A syscall's number on the native architecture (libseccomp's table); None for names it does
/// not know or that this architecture lacks (pseudo-syscalls are negative).
fn syscall_number(name: &str) -> Option<u32> {
    syscall(name).and_then(|s| u32::try_from(i32::from(s)).ok())
}

fn export(ctx: &ScmpFilterContext) -> Result<Program, SeccompError> {
    let fd = unsafe { libc::memfd_create(c"lonely-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(SeccompError::Export(std::io::Error::last_os_error()));
    }
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(SeccompError::Export)?;
    let filter: Vec<libc::sock_filter> = bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Ok(Program(filter.into()))
}

/// The default profile: one program (a Vec, as every profile's), emitted once per process;
/// `setuid_guard`: with the calls that could leave a setuid/setgid file refused (compact.rs).
pub fn default_programs(setuid_guard: bool) -> Result<Vec<Program>, SeccompError> {
    static DEFAULT: [OnceLock<Vec<Program>>; 2] = [OnceLock::new(), OnceLock::new()];
    let cell = &DEFAULT[usize::from(setuid_guard)];
    if let Some(p) = cell.get() {
        return Ok(p.clone());
    }
    let program = Program(compact::default_program(setuid_guard)?.into());
    Ok(cell.get_or_init(|| vec![program]).clone())
}

/// A docker / OCI seccomp profile (the JSON `docker run --security-opt seccomp=` takes).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<i32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    errno_ret: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

fn action(name: &str, errno: Option<i32>) -> Result<ScmpAction, SeccompError> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(libc::EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno.unwrap_or(0) as u16),
        other => return Err(SeccompError::Profile(format!("unknown action `{other}`"))),
    })
}

fn compare(a: &Arg) -> Result<ScmpArgCompare, SeccompError> {
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(a.value),
        other => return Err(SeccompError::Profile(format!("unknown operator `{other}`"))),
    };
    let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
        a.value_two
    } else {
        a.value
    };
    Ok(ScmpArgCompare::new(a.index, op, datum))
}

/// Compiles a user profile (native architecture only, plus any it names that this host runs).
pub fn compile(json: &str) -> Result<Vec<Program>, SeccompError> {
    let profile: Profile =
        serde_json::from_str(json).map_err(|e| SeccompError::Profile(e.to_string()))?;
    let mut ctx =
        ScmpFilterContext::new(action(&profile.default_action, profile.default_errno_ret)?)?;
    ctx.set_ctl_nnp(false)?;
    for arch in &profile.architectures {
        let Ok(a) = arch.parse::<ScmpArch>() else {
            continue;
        };
        if a != ScmpArch::native() {
            let _ = ctx.add_arch(a);
        }
    }
    for rule in &profile.syscalls {
        let act = action(&rule.action, rule.errno_ret)?;
        let args: Vec<ScmpArgCompare> = rule.args.iter().map(compare).collect::<Result<_, _>>()?;
        for name in rule.names.iter().chain(rule.name.iter()) {
            let Some(s) = syscall(name) else { continue };
            if act == ctx.get_act_default()? {
                continue; // libseccomp refuses a rule that repeats the default
            }
            // libseccomp refuses two comparisons of one argument in a rule (they would be ANDed):
            // as runc does, each becomes a rule of its own (ORed), as docker's profiles mean them.
            let repeated = rule
                .args
                .iter()
                .enumerate()
                .any(|(i, a)| rule.args[..i].iter().any(|b| b.index == a.index));
            if args.is_empty() {
                ctx.add_rule(act, s)?;
            } else if repeated {
                for one in &args {
                    ctx.add_rule_conditional(act, s, std::slice::from_ref(one))?;
                }
            } else {
                ctx.add_rule_conditional(act, s, &args)?;
            }
        }
    }
    Ok(vec![export(&ctx)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_comparing_one_argument_twice_compiles_as_rules_of_their_own() {
        // docker's and runtime-tools' default profiles have this personality rule.
        let profile = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW",
            "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]}]}"#;
        let programs = compile(profile).expect("compiles");
        assert_eq!(programs.len(), 1);
    }

    #[test]
    fn the_default_profile_is_one_compact_program() {
        let p = default_programs(false).unwrap();
        assert_eq!(p.len(), 1);
        let len = p[0].0.len();
        assert!((60..=150).contains(&len), "{len} instructions");
        assert_eq!(
            default_programs(false).unwrap(),
            p,
            "emitted once per process"
        );
    }

    #[test]
    fn a_docker_profile_compiles_and_bad_ones_say_why() {
        let profile = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#;
        assert_eq!(compile(profile).unwrap().len(), 1);
        let err = compile(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: profile: unknown action `SCMP_ACT_NOPE`"
        );
    }

    #[test]
    fn dangerous_calls_are_not_in_the_allowlist() {
        for name in [
            "keyctl",
            "add_key",
            "bpf",
            "mount",
            "umount2",
            "pivot_root",
            "setns",
            "kexec_load",
            "open_by_handle_at",
            "init_module",
            "userfaultfd",
            "io_uring_setup",
            "perf_event_open",
            "unshare",
            "clone",
            "clone3",
            "socket",
            "personality",
            "reboot",
        ] {
            assert!(
                !ALLOWED.contains(&name),
                "{name} must not be allowed unconditionally"
            );
        }
    }
}
