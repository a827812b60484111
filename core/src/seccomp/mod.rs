//! Seccomp: the default profile (docker's allowlist, stricter where docker is weak), emitted
//! by `compact.rs` as one BPF program, and docker/OCI JSON profiles, compiled with libseccomp.
//! Both are made in the parent; the child only loads them, as its last step before exec.

mod compact;
#[cfg(test)]
mod compact_tests;

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::Deserialize;

use crate::security;

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
/// Left out on purpose: those of DENIED whatever the capabilities (keyctl, add_key,
/// request_key, kexec_*, userfaultfd, io_uring_*, pivot_root, swapon/off, vm86, ustat, sysfs,
/// uselib), and those of BY_CAPABILITY unless the container has the capability (mount and the
/// new mount API, umount2, setns, open_by_handle_at, name_to_handle_at, *_module, bpf,
/// perf_event_open, reboot, acct, the clock and time setters, quotactl, lookup_dcookie,
/// iopl/ioperm, syslog, ...).
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

/// docker's per-capability rules (`includes.caps` in moby's profiles/seccomp/default.json): a
/// container whose bounding set has the capability may make these calls too, as under docker
/// (which matches them against the bounding set as well). Listed as docker lists them; a few
/// (chroot, ptrace, process_vm_*, process_madvise, pidfd_getfd, get_mempolicy, mbind,
/// set_mempolicy) are in ALLOWED for everyone already, and the kernel checks the capability
/// itself. Two additions of ours, both calls docker allows to everyone and we deny by default:
/// `name_to_handle_at` with DAC_READ_SEARCH (the pair of open_by_handle_at) and `adjtimex`,
/// `clock_adjtime` with SYS_TIME. Whatever the capabilities, DENIED stays denied, and so do the
/// argument rules that are ours (TIOCSTI/TIOCLINUX, AF_ALG/AF_VSOCK, personality, i386, x32).
/// With SYS_ADMIN, clone, unshare and clone3 are allowed whatever their flags (docker's too).
pub(super) const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "DAC_READ_SEARCH",
        &["open_by_handle_at", "name_to_handle_at"],
    ),
    (
        "SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("SYS_BOOT", &["reboot"]),
    ("SYS_CHROOT", &["chroot"]),
    (
        "SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("SYS_PACCT", &["acct"]),
    (
        "SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "SYS_TIME",
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "adjtimex",
            "clock_adjtime",
        ],
    ),
    ("SYS_TTY_CONFIG", &["vhangup"]),
    (
        "SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("SYSLOG", &["syslog"]),
    ("BPF", &["bpf"]),
    ("PERFMON", &["perf_event_open"]),
];

/// Denied on purpose, whatever the capabilities (docker's profile has none of them either, but
/// io_uring, which newer docker denies too). Named here so that the profile knows them: they
/// answer EPERM, never the ENOSYS of a call newer than the profile (compact.rs).
pub(super) const DENIED: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "pivot_root",
    "swapon",
    "swapoff",
    "vm86",
    "vm86old",
    "ustat",
    "sysfs",
    "uselib",
    "nfsservctl",
    "_sysctl",
];

/// The capabilities some rule of BY_CAPABILITY names: the only bits a program depends on.
pub(super) fn capability_rules_mask() -> u64 {
    BY_CAPABILITY.iter().fold(0, |m, (cap, _)| {
        m | security::mask(&[cap]).expect("BY_CAPABILITY names known capabilities")
    })
}

/// CAP_SYS_ADMIN's bit.
pub(super) fn sys_admin() -> u64 {
    security::mask(&["SYS_ADMIN"]).expect("a known capability")
}

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

/// The default profile for a container whose bounding set is `capabilities`: one program (a
/// Vec, as every profile's), emitted once per process for each variant (the setuid guard, and
/// the capabilities of BY_CAPABILITY that the set has; any other bit changes nothing), then
/// shared; `setuid_guard`: with the calls that could leave a setuid/setgid file refused.
pub fn default_programs(
    setuid_guard: bool,
    capabilities: u64,
) -> Result<Vec<Program>, SeccompError> {
    type Variants = Mutex<HashMap<(bool, u64), Vec<Program>>>;
    static DEFAULT: OnceLock<(u64, Variants)> = OnceLock::new();
    let (relevant, variants) =
        DEFAULT.get_or_init(|| (capability_rules_mask(), Mutex::new(HashMap::new())));
    let key = (setuid_guard, capabilities & relevant);
    let mut variants = variants.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = variants.get(&key) {
        return Ok(p.clone());
    }
    let program = Program(compact::default_program(key.0, key.1)?.into());
    Ok(variants.entry(key).or_insert_with(|| vec![program]).clone())
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
        let docker = security::mask(security::DOCKER_DEFAULT).unwrap();
        let p = default_programs(false, docker).unwrap();
        assert_eq!(p.len(), 1);
        let len = p[0].0.len();
        assert!((60..=150).contains(&len), "{len} instructions");
        assert_eq!(
            default_programs(false, docker).unwrap(),
            p,
            "emitted once per process"
        );
    }

    #[test]
    fn each_capability_variant_is_emitted_once_and_other_bits_share_it() {
        let docker = security::mask(security::DOCKER_DEFAULT).unwrap();
        let cap = |n: &str| security::mask(&[n]).unwrap();
        let p = default_programs(false, docker).unwrap();
        // NET_ADMIN has no rule: the same program (the same allocation).
        assert_eq!(
            default_programs(false, docker | cap("NET_ADMIN")).unwrap(),
            p
        );
        let admin = default_programs(false, docker | cap("SYS_ADMIN")).unwrap();
        assert_ne!(admin, p);
        assert_ne!(admin[0].0.to_vec(), p[0].0.to_vec(), "a different program");
        assert_eq!(
            default_programs(false, docker | cap("SYS_ADMIN") | cap("NET_ADMIN")).unwrap(),
            admin,
            "emitted once per variant"
        );
        assert_ne!(
            default_programs(true, docker).unwrap(),
            p,
            "the guard's own"
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
