//! What the caller learns of a container that did not start: the step, its errno, a stable
//! code, and the option at fault when it is the caller's input (lib/container.ts then throws a
//! RangeError naming it; any other failure is a ContainerError).

use nix::errno::Errno;

use super::StartError;
use crate::cgroups::CgroupError;
use crate::monitor::MonitorError;
use crate::spawn::SpawnError;
use crate::spec::SpecError;
use crate::stdio::StdioError;

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub stage: String,
    pub path: Option<String>,
    /// 0 when no system call failed.
    pub errno: i32,
    /// The errno's name (ENOENT...), or ERR_* for failures without one.
    pub code: String,
    pub message: String,
    /// The option whose value could not be used (`stdio`, `mounts`, `capAdd`, `seccomp`...).
    pub option: Option<&'static str>,
}

fn io_errno(e: &std::io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw)
}

impl From<&StartError> for Failure {
    fn from(e: &StartError) -> Failure {
        let text = e.to_string();
        let (stage, path, errno, option): (
            &str,
            Option<String>,
            Option<Errno>,
            Option<&'static str>,
        ) = match e {
            StartError::Spec(s) => match s {
                SpecError::Source { path, source } => (
                    "mount source",
                    Some(path.clone()),
                    io_errno(source),
                    Some("mounts"),
                ),
                SpecError::Capabilities(_) => ("capabilities", None, None, Some("capAdd")),
                SpecError::Seccomp(_) => ("seccomp", None, None, Some("seccomp")),
                SpecError::UnknownRlimit(_) => ("rlimits", None, None, Some("rlimits")),
                SpecError::NotRunning => ("exec", None, None, None),
                SpecError::DetachedIdRanges => ("spec", None, None, Some("uidMap")),
                _ => ("spec", None, None, None),
            },
            StartError::OpenRootfs(r) => ("open rootfs", Some(r.path.clone()), Some(r.errno), None),
            StartError::Stdio(s) => match s {
                StdioError::Pipe(errno) => ("pipe2", None, Some(*errno), None),
                StdioError::Pty(errno) => ("console socket", None, Some(*errno), None),
                StdioError::DevNull(io) => ("open", Some("/dev/null".into()), io_errno(io), None),
                StdioError::Directory(_) => ("stdio", None, Some(Errno::EISDIR), Some("stdio")),
                StdioError::BadFd { errno, .. } => ("stdio", None, Some(*errno), Some("stdio")),
            },
            StartError::Cgroup(c) => ("cgroup", None, cgroup_errno(c), None),
            StartError::MapsPipe(errno) => ("pipe2", None, Some(*errno), None),
            StartError::Spawn(s) => match s {
                SpawnError::Setup { stage, path, errno } => {
                    (stage.as_str(), path.clone(), Some(*errno), None)
                }
                SpawnError::Clone(errno) => ("clone", None, Some(*errno), None),
                SpawnError::PidfdOpen(errno) => ("pidfd_open", None, Some(*errno), None),
                SpawnError::Pipe(errno) => ("pipe2", None, Some(*errno), None),
                SpawnError::IdMaps(_) => ("uid/gid maps", None, None, None),
            },
            StartError::UserNamespace(errno) => ("clone", None, Some(*errno), None),
            StartError::Console(s) => ("console", None, stdio_errno(s), None),
            StartError::Watch(errno) => ("epoll_ctl", None, Some(*errno), None),
            StartError::Init(errno) => ("memfd_create", None, Some(*errno), None),
            StartError::Monitor(m) => match m {
                MonitorError::Open { path, errno } => {
                    ("open", Some(path.clone()), Some(*errno), None)
                }
                MonitorError::Bind { path, error } => {
                    ("bind", Some(path.clone()), io_errno(error), None)
                }
                MonitorError::Sync(errno) => ("socketpair", None, Some(*errno), None),
                MonitorError::Program(errno) => ("memfd_create", None, Some(*errno), None),
            },
            StartError::MonitorRelease(errno) => ("sendmsg", None, Some(*errno), None),
            StartError::JoinPath { path, errno } => {
                ("open namespace", Some(path.clone()), Some(*errno), None)
            }
            StartError::Callback(_) => ("exit callback", None, None, None),
        };
        let code = match errno {
            Some(errno) => format!("{errno:?}"),
            None => stable_code(e).into(),
        };
        // The step is not the cause: it is the first one that needed an fd.
        let message = match errno {
            Some(Errno::EMFILE) => format!("{text}: this Node process has run out of file descriptors (close some, or raise `ulimit -n`) ({code})"),
            Some(_) if !text.ends_with(&format!("({code})")) => format!("{text} ({code})"),
            _ => text,
        };
        Failure {
            stage: stage.into(),
            path,
            errno: errno.map_or(0, |e| e as i32),
            code,
            message,
            option,
        }
    }
}

/// ERR_* for a failure that no errno names.
fn stable_code(e: &StartError) -> &'static str {
    match e {
        StartError::Spec(SpecError::Capabilities(_)) => "ERR_CAPABILITY",
        StartError::Spec(SpecError::NotRunning) => "ERR_NOT_RUNNING",
        StartError::Spec(SpecError::Seccomp(_)) => "ERR_SECCOMP_PROFILE",
        StartError::Spec(_) => "ERR_SPEC",
        StartError::Cgroup(_) => "ERR_CGROUP",
        StartError::Spawn(SpawnError::IdMaps(_)) => "ERR_ID_MAPS",
        _ => "ERR_START",
    }
}

fn cgroup_errno(e: &CgroupError) -> Option<Errno> {
    match e {
        CgroupError::Detect { source, .. }
        | CgroupError::Mkdir { source, .. }
        | CgroupError::Write { source, .. }
        | CgroupError::Refused { source, .. }
        | CgroupError::Open { source, .. }
        | CgroupError::Remove { source, .. } => io_errno(source),
        _ => None,
    }
}

fn stdio_errno(e: &StdioError) -> Option<Errno> {
    match e {
        StdioError::Pipe(errno) | StdioError::Pty(errno) | StdioError::BadFd { errno, .. } => {
            Some(*errno)
        }
        StdioError::DevNull(io) => io_errno(io),
        StdioError::Directory(_) => Some(Errno::EISDIR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emfile_says_the_process_ran_out_and_errors_have_stable_codes() {
        let f = Failure::from(&StartError::Stdio(StdioError::Pipe(Errno::EMFILE)));
        assert_eq!(
            (f.stage.as_str(), f.code.as_str(), f.option),
            ("pipe2", "EMFILE", None)
        );
        assert!(
            f.message.contains("run out of file descriptors"),
            "{}",
            f.message
        );
        let bad = Failure::from(&StartError::Stdio(StdioError::BadFd {
            fd: 9,
            errno: Errno::EBADF,
        }));
        assert_eq!((bad.option, bad.code.as_str()), (Some("stdio"), "EBADF"));
        let caps = Failure::from(&StartError::Spec(SpecError::Capabilities("x".into())));
        assert_eq!(
            (caps.option, caps.code.as_str(), caps.errno),
            (Some("capAdd"), "ERR_CAPABILITY", 0)
        );
    }
}
