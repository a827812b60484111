//! The tail of every plan, and of an exec into a running container: rlimits, the bounding
//! set, every fd but 0-2 closed, seccomp, the credentials, the parent-death signal again, the
//! working directory, capabilities, no_new_privs; in the only order that works.

use super::host::HostFacts;
use crate::plan::Op;
use crate::seccomp;
use crate::security;
use crate::spec::{
    cstring, rlimit_resource, ContainerSpec, Handles, Rlimit, Seccomp, SeccompName, SpecError,
};

/// Who the process becomes and what it keeps.
pub struct Privileges<'a> {
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [u32],
    /// setgroups is allowed: not in a user namespace whose gid map is just `0 <gid> 1`.
    pub set_groups: bool,
    pub cwd: &'a str,
    /// Make a missing cwd (docker's -w and WorkingDir; not for an exec, as docker exec).
    pub make_cwd: bool,
    pub rlimits: &'a [Rlimit],
    /// None: docker's default set.
    pub capabilities: Option<&'a [String]>,
    pub capabilities_all: bool,
    pub seccomp: &'a Seccomp,
    pub setuid_guard: bool,
    pub no_new_privileges: bool,
    /// A pidfd of the parent, polled once the credentials changed.
    pub parent_pidfd: Option<i32>,
    /// The program fd exec'd at the end (lonely-init's memfd), kept open until then.
    pub program_fd: Option<i32>,
    /// Outlives its creator: no parent-death signal, no check that the parent lives.
    pub detached: bool,
    /// An fd the program keeps across exec (a created PID 1's hold pipe).
    pub passed_fd: Option<i32>,
    /// An OCI config's four sets (the bounding set is `capabilities`).
    pub capability_sets: Option<&'a crate::spec::CapabilitySets>,
    pub oom_score_adj: Option<i32>,
}

impl<'a> Privileges<'a> {
    pub fn of(spec: &'a ContainerSpec, handles: &Handles) -> Privileges<'a> {
        Privileges {
            uid: spec.uid,
            gid: spec.gid,
            groups: &spec.groups,
            set_groups: !spec.namespaces.user || handles.maps_sync.is_some(),
            cwd: &spec.cwd,
            make_cwd: true,
            rlimits: &spec.rlimits,
            capabilities: spec.capabilities.as_deref(),
            capabilities_all: spec.capabilities_all,
            seccomp: &spec.seccomp,
            setuid_guard: spec.setuid_guard,
            no_new_privileges: spec.no_new_privileges,
            parent_pidfd: handles.parent_pidfd,
            program_fd: handles.init,
            detached: spec.detached,
            passed_fd: handles.hold,
            capability_sets: spec.capability_sets.as_ref(),
            oom_score_adj: spec.oom_score_adj,
        }
    }
}

pub fn drop_privileges(
    p: &Privileges,
    host: &HostFacts,
    plan: &mut Vec<Op>,
) -> Result<(), SpecError> {
    for r in p.rlimits {
        let resource =
            rlimit_resource(&r.name).ok_or_else(|| SpecError::UnknownRlimit(r.name.clone()))?;
        let value = |v: i64| if v < 0 { libc::RLIM_INFINITY } else { v as u64 };
        plan.push(Op::Rlimit {
            resource,
            soft: value(r.soft),
            hard: value(r.hard),
        });
    }
    let wanted = match p.capabilities {
        Some(names) => security::mask(names).map_err(|e| SpecError::Capabilities(e.to_string()))?,
        None => security::mask(security::DOCKER_DEFAULT).expect("known names"),
    };
    // A container cannot get what this process may not pass on: with ALL that is the
    // answer, with a name it is an error naming the capability.
    let missing = wanted & !host.bounding;
    if missing != 0 && !p.capabilities_all {
        return Err(SpecError::Capabilities(format!(
            "capabilities: {} not in this process's bounding set, so no container it makes can have it",
            security::names(missing).join(", ")
        )));
    }
    let caps = wanted & host.bounding;
    // effective, permitted, inheritable, ambient: an OCI config's, each within the bounding set
    // (as runc); else root's are the set and another uid keeps none (setresuid cleared them).
    let sets = match p.capability_sets {
        Some(s) => {
            let mask = |names: &[String]| -> Result<u64, SpecError> {
                let m =
                    security::mask(names).map_err(|e| SpecError::Capabilities(e.to_string()))?;
                Ok(m & caps)
            };
            [
                mask(&s.effective)?,
                mask(&s.permitted)?,
                mask(&s.inheritable)?,
                mask(&s.ambient)?,
            ]
        }
        None if p.uid == 0 => [caps, caps, 0, 0],
        None => [0; 4],
    };
    if let Some(adj) = p.oom_score_adj {
        // While root: /proc/self of a process that is not dumpable belongs to root.
        plan.push(Op::WriteProc {
            path: cstring("oomScoreAdj", "/proc/self/oom_score_adj")?,
            text: adj.to_string().into_bytes(),
        });
    }
    let programs = match p.seccomp {
        // docker's per-capability rules read the bounding set, as docker's do.
        Seccomp::Named(SeccompName::Default) => seccomp::default_programs(p.setuid_guard, caps),
        Seccomp::Named(SeccompName::Unconfined) => Ok(vec![]),
        Seccomp::Profile { profile } => seccomp::compile(profile),
    }
    .map_err(|e| SpecError::Seccomp(e.to_string()))?;
    let filters = |plan: &mut Vec<Op>| plan.extend(programs.iter().cloned().map(Op::Seccomp));
    // Needs CAP_SETPCAP: before the uid changes.
    plan.push(Op::BoundingSet {
        keep: caps,
        last: host.last_cap,
    });
    // Before chdir: no inherited directory fd can lead the cwd out of the root.
    // A detached container does not poll its parent: that slot is for its hold pipe.
    let first_kept = if p.detached {
        p.passed_fd
    } else {
        p.parent_pidfd
    };
    plan.push(Op::CloseFds {
        keep: [first_kept.unwrap_or(-1), p.program_fd.unwrap_or(-1), -1, -1],
    });
    let cwd = cstring("cwd", p.cwd)?;
    if p.make_cwd && p.cwd != "/" {
        // As root inside the root, before any chdir: each missing directory is the user's.
        plan.push(Op::MakeDirs {
            dirs: ancestors_and_self(p.cwd)?,
            uid: p.uid,
            gid: p.gid,
        });
    }
    if !p.no_new_privileges {
        // The profile may deny getcwd: the working directory is verified before the filter.
        plan.push(Op::Chdir(cwd.clone()));
        plan.push(Op::VerifyCwd);
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: while still root.
        filters(plan);
    }
    if p.capability_sets.is_some() && p.uid != 0 && sets[1] != 0 {
        // The permitted set must survive setresuid for capset to keep it.
        plan.push(Op::KeepCaps);
    }
    plan.push(Op::Credentials {
        uid: p.uid,
        gid: p.gid,
        groups: p.groups.to_vec(),
        set_groups: p.set_groups,
    });
    // A credential change clears the parent-death signal: arm it again, then make sure the
    // parent did not die before that (its signal would never come).
    if !p.detached {
        plan.push(Op::ParentDeathSignal(libc::SIGKILL));
        if let Some(pidfd) = p.parent_pidfd {
            plan.push(Op::ParentAlive(pidfd));
        }
    }
    if let Some(fd) = p.passed_fd {
        // dup2 onto itself clears FD_CLOEXEC: lonely-init keeps it.
        plan.push(Op::Dup2 { from: fd, to: fd });
    }
    // Again as the container's user: its own permission to enter the directory.
    plan.push(Op::Chdir(cwd));
    if p.no_new_privileges {
        plan.push(Op::VerifyCwd);
    }
    plan.push(Op::Capabilities {
        effective: sets[0],
        permitted: sets[1],
        inheritable: sets[2],
        ambient: sets[3],
    });
    if p.no_new_privileges {
        plan.push(Op::NoNewPrivs);
        // Last: the filter then only has to allow execve.
        filters(plan);
    }
    Ok(())
}

/// `/a`, `/a/b`, `/a/b/c` for `/a/b/c`: the directories `mkdir -p` makes, in order.
fn ancestors_and_self(path: &str) -> Result<Vec<std::ffi::CString>, SpecError> {
    let mut dirs = Vec::new();
    for (i, _) in path.match_indices('/').skip(1) {
        dirs.push(cstring("cwd", &path[..i])?);
    }
    dirs.push(cstring("cwd", path.trim_end_matches('/'))?);
    dirs.dedup();
    Ok(dirs)
}
