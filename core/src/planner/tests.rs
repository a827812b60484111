//! The planner's tests: the order of the steps, and what each part plans, on this host's
//! facts or on facts built here.

use super::*;
use crate::plan::Op;
use crate::spec::fixtures::{spec, BASE};
use crate::spec::{parse, ContainerSpec, Handles};
use crate::sys::MOUNT_ATTR_RDONLY;

#[test]
fn path_search_happens_in_the_container_path() {
    let p = spec(BASE)
        .prepare(&Handles {
            stdio: [0, 1, 2],
            ..Default::default()
        })
        .unwrap();
    let c: Vec<_> = p
        .exec
        .candidates
        .iter()
        .map(|c| c.to_str().unwrap())
        .collect();
    assert_eq!(c, ["/bin/ls", "/usr/bin/ls"]);
    assert_eq!(p.exec.argv.len(), 3);
    assert!(p.exec.argv[2].is_null());
}

#[test]
fn clone_flags_follow_namespaces() {
    let p = spec(BASE)
        .prepare(&Handles {
            stdio: [0, 1, 2],
            ..Default::default()
        })
        .unwrap();
    assert_ne!(p.clone_flags & libc::CLONE_NEWNET, 0);
    let off = BASE.replace(r#""net":true"#, r#""net":false"#);
    let p = spec(&off)
        .prepare(&Handles {
            stdio: [0, 1, 2],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p.clone_flags & libc::CLONE_NEWNET, 0);
    assert!(!p.plan.contains(&Op::LoopbackUp));
}

#[test]
fn pooled_namespaces_are_joined_instead_of_made_at_clone() {
    let p = spec(BASE)
        .prepare(&Handles {
            stdio: [0, 1, 2],
            netns: Some(40),
            ipcns: Some(41),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p.clone_flags & (libc::CLONE_NEWNET | libc::CLONE_NEWIPC), 0);
    for (fd, nstype) in [(40, libc::CLONE_NEWNET), (41, libc::CLONE_NEWIPC)] {
        assert!(p.plan.contains(&Op::JoinNamespace { fd, nstype }));
    }
    assert!(
        !p.plan.contains(&Op::LoopbackUp),
        "the pool's lo is up already"
    );
    let p = spec(BASE)
        .prepare(&Handles {
            stdio: [0, 1, 2],
            ..Default::default()
        })
        .unwrap();
    assert_ne!(
        p.clone_flags & libc::CLONE_NEWIPC,
        0,
        "none ready: made at clone"
    );
}

fn spec_with(extra: &str) -> ContainerSpec {
    parse(&format!(
        r#"{{"argv":["true"],"env":[],"cwd":"/","hostname":null,
        "namespaces":{{"pid":true,"mount":true,"uts":true,"ipc":true,"net":true,"cgroup":true}},
        "uid":0,"gid":0{extra}}}"#
    ))
    .unwrap()
}

#[test]
fn ignored_stdio_is_the_containers_own_dev_null_never_the_hosts() {
    let s = spec_with(r#","stdio":["ignore","pipe","ignore"]"#);
    let mut plan = vec![];
    plan_fn(&s, &mut plan);
    let dev = plan
        .iter()
        .find_map(|o| match o {
            Op::Device { dir, .. } => Some(*dir),
            _ => None,
        })
        .unwrap();
    let null = plan
        .iter()
        .position(|o| {
            o == &Op::NullStdio {
                dir: dev,
                fds: [true, false, true],
            }
        })
        .expect("one NullStdio for fds 0 and 2");
    let made = plan
        .iter()
        .rposition(|o| matches!(o, Op::Device { .. }))
        .unwrap();
    assert!(made < null, "after the nodes exist");
    let tty = spec_with(r#","stdio":["ignore","ignore","ignore"],"tty":true"#);
    plan.clear();
    plan_fn(&tty, &mut plan);
    assert!(
        !plan.iter().any(|o| matches!(o, Op::NullStdio { .. })),
        "a terminal replaces 0-2"
    );
}

#[test]
fn host_trees_are_cloned_before_the_root_is_attached() {
    let s =
        spec_with(r#","rootfs":"/","mounts":[{"type":"bind","source":"/tmp","target":"/mnt/x"}]"#);
    let mut plan = vec![];
    plan_fn(&s, &mut plan);
    let attach = plan
        .iter()
        .position(|o| matches!(o, Op::AttachRoot { .. }))
        .unwrap();
    let last_clone = plan
        .iter()
        .rposition(|o| matches!(o, Op::CloneTree { .. }))
        .unwrap();
    assert!(last_clone < attach);
    assert_eq!(plan.last(), Some(&Op::PivotRoot));
    assert!(
        !plan.iter().any(|o| matches!(o, Op::RootAttrs(_))),
        "a rootfs stays writable unless asked"
    );
}

#[test]
fn a_bind_is_cloned_again_just_before_its_attach_so_mountinfo_keeps_the_config_order() {
    let s = spec_with(
        r#","rootfs":"/","mounts":[{"type":"tmpfs","target":"/mnt/t"},{"type":"bind","source":"/tmp","target":"/mnt/x"}]"#,
    );
    let mut plan = vec![];
    plan_fn(&s, &mut plan);
    let tmpfs = plan
        .iter()
        .position(|o| matches!(o, Op::NewFs { fstype, .. } if fstype.to_str() == Ok("tmpfs")))
        .unwrap();
    let reclone = plan
        .iter()
        .position(|o| matches!(o, Op::Reclone { .. }))
        .unwrap();
    let Op::Reclone { slot } = plan[reclone] else {
        unreachable!()
    };
    assert!(tmpfs < reclone, "the tmpfs listed first is made first");
    assert!(
        matches!(&plan[reclone + 1], Op::Attach { slot: s, .. } if *s == slot),
        "attached right after: {:?}",
        &plan[reclone + 1]
    );
}

#[test]
fn the_mirror_root_ends_read_only() {
    let s = spec_with(r#","rootfs":null"#);
    let mut plan = vec![];
    plan_fn(&s, &mut plan);
    let n = plan.len();
    assert_eq!(plan[n - 2], Op::RootAttrs(MOUNT_ATTR_RDONLY));
    assert!(plan
        .iter()
        .any(|o| matches!(o, Op::CloneTree { src, .. } if src.to_str() == Ok("/usr"))));
}

#[test]
fn every_slot_is_within_the_count() {
    let s = spec_with(
        r#","rootfs":null,"mounts":[{"type":"tmpfs","target":"/a/b","size":"1m","mode":null}]"#,
    );
    let mut plan = vec![];
    let count = plan_fn(&s, &mut plan);
    // The child indexes the slot array with these: one out of range would panic there.
    let used: Vec<usize> = plan
        .iter()
        .flat_map(|op| match op {
            Op::CloneTree { slot, .. } | Op::CloneRootfs { slot, .. } | Op::NewFs { slot, .. } => {
                vec![*slot]
            }
            Op::Attach { slot, target, .. } => vec![*slot, target.base],
            Op::BindDevice { slot, dir, at } => vec![*slot, *dir, at.base],
            Op::OpenNull { dir, slot } => vec![*dir, *slot],
            Op::Symlink { dir, .. }
            | Op::Device { dir, .. }
            | Op::Mkdir { dir, .. }
            | Op::NullStdio { dir, .. }
            | Op::Readonly { dir, .. } => vec![*dir],
            Op::MaskPath {
                null,
                empty,
                target,
                ..
            } => vec![*null, *empty, target.base],
            Op::Rebind { target, .. } => vec![target.base],
            _ => vec![],
        })
        .collect();
    assert!(used.iter().any(|s| *s > 0), "the plan uses slots");
    for slot in used {
        assert!(slot < count, "slot {slot} of {count}");
    }
}

#[test]
fn the_rootfs_is_cloned_from_the_parents_fd_never_its_path() {
    let s = spec_with(r#","rootfs":"/srv/root""#);
    let mut out = vec![];
    filesystem(&s, (42, None, &[]), &HostFacts::read(), &mut out).unwrap();
    assert!(out.iter().any(
        |o| matches!(o, Op::EnterRootfs { fd: 42, shown, join: None } if shown.to_str() == Ok("/srv/root"))
    ));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Op::CloneTree { src, .. } if src.to_str() == Ok("/srv/root"))));
}

#[test]
fn kernel_paths_go_through_the_planned_filesystems_fds_with_no_symlink() {
    let s = spec_with(r#","rootfs":"/srv/root""#);
    let mut out = vec![];
    filesystem(&s, (42, None, &[]), &HostFacts::read(), &mut out).unwrap();
    // The slots of the proc, dev and sys filesystems, kept open after their attach.
    let kept = |at: &str| {
        out.iter()
            .find_map(|o| match o {
                Op::Attach {
                    slot,
                    target,
                    keep: true,
                } if target.path.to_str() == Ok(at) => {
                    assert!(target.strict, "{at} is attached with no symlink");
                    Some(*slot)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{at} is attached and kept"))
    };
    let (proc, dev, sys) = (kept("proc"), kept("dev"), kept("sys"));
    let mut checked = 0;
    for op in &out {
        let target = match op {
            Op::MaskPath { target, .. } | Op::Rebind { target, .. } => target,
            _ => continue,
        };
        let path = target.path.to_str().unwrap();
        let base = match path.split('/').next() {
            Some("proc") => proc,
            Some("sys") => sys,
            Some("dev") => dev,
            _ => continue,
        };
        assert!(
            target.strict && target.base == base,
            "{path} resolved through its filesystem's fd"
        );
        checked += 1;
    }
    assert!(
        checked >= 8,
        "the default masks and read-only paths ({checked})"
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Op::OpenNull { dir, .. } if *dir == dev)),
        "/dev/null from our own /dev"
    );
    for op in &out {
        let at = match op {
            Op::Device { at, .. } | Op::BindDevice { at, .. } => at,
            Op::Attach { target, .. } | Op::MaskPath { target, .. } | Op::Rebind { target, .. } => {
                target
            }
            _ => continue,
        };
        if at.path.to_str() == Ok("dev/null") {
            assert!(
                at.strict && at.base == dev,
                "never dev/null by a path of the root: {op:?}"
            );
        }
    }
    assert!(
        out.iter().any(|o| matches!(
            o,
            Op::Rebind {
                must_exist: true,
                ..
            }
        )),
        "kernel read-only paths must exist"
    );
}

fn plan_fn(s: &ContainerSpec, out: &mut Vec<Op>) -> usize {
    filesystem(s, (-1, None, &[]), &HostFacts::read(), out).unwrap()
}

/// A host built here: only /usr (and `bin -> usr/bin`), no kernel path, a bounding set without SYS_ADMIN.
fn small_host() -> HostFacts {
    static MIRROR: std::sync::OnceLock<Vec<host::HostEntry>> = std::sync::OnceLock::new();
    HostFacts {
        mirror: MIRROR.get_or_init(|| {
            vec![
                host::HostEntry::Dir("usr"),
                host::HostEntry::Link("bin", c"usr/bin".to_owned()),
            ]
        }),
        kernel_path: |_| None,
        source: |_| Ok((true, (1, 2))),
        bounding: crate::security::mask(crate::security::DOCKER_DEFAULT).unwrap(),
        last_cap: 40,
        ids: (1000, 1000),
        lowerdir_append: true,
    }
}

#[test]
fn the_planner_reads_the_host_only_through_its_facts() {
    let s = spec(BASE);
    let handles = Handles {
        stdio: [0, 1, 2],
        ..Default::default()
    };
    let p = prepare(&s, &handles, &small_host()).unwrap();
    let clones: Vec<_> = p
        .plan
        .iter()
        .filter_map(|o| match o {
            Op::CloneTree { src, .. } => Some(src.to_str().unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(clones, ["/usr"], "the mirror is the facts' layout");
    assert!(p
        .plan
        .iter()
        .any(|o| matches!(o, Op::Symlink { at, .. } if at.path.to_str() == Ok("bin"))));
    assert!(
        !p.plan
            .iter()
            .any(|o| matches!(o, Op::MaskPath { .. } | Op::OpenNull { .. })),
        "a kernel without the masked paths gets no mask"
    );
    let admin = spec(&BASE.replacen('{', r#"{"capabilities":["SYS_ADMIN"],"#, 1));
    assert!(matches!(
        prepare(&admin, &handles, &small_host()),
        Err(SpecError::Capabilities(m)) if m.contains("CAP_SYS_ADMIN not in this process's bounding set")
    ));
    let rootless = spec(&BASE.replace(r#""cgroup":true"#, r#""cgroup":true,"user":true"#));
    let p = prepare(&rootless, &handles, &small_host()).unwrap();
    assert!(p.plan.contains(&Op::IdMaps {
        uid_map: b"0 1000 1".to_vec(),
        gid_map: b"0 1000 1".to_vec()
    }));
}

#[test]
fn an_exec_helper_is_not_dumpable_and_holds_no_fd_of_nodes_before_its_sibling_enters_the_container()
{
    let s = spec(&BASE.replacen('{', r#"{"join":1234,"#, 1));
    let handles = Handles {
        stdio: [10, 11, 12],
        join: Some(20),
        cgroup_procs: vec![21],
        parent_pidfd: Some(22),
        ..Default::default()
    };
    let p = prepare(&s, &handles, &HostFacts::read()).unwrap();
    let at = |want: &dyn Fn(&Op) -> bool| p.plan.iter().position(want).unwrap();
    let not_dumpable = at(&|o| *o == Op::NotDumpable);
    let joins = at(&|o| matches!(o, Op::JoinNamespace { fd: 20, .. }));
    let closes = at(&|o| {
        *o == Op::CloseFds {
            keep: [22, -1, -1, -1],
        }
    });
    let forks = at(&|o| *o == Op::ForkIntoPidns);
    assert!(
        not_dumpable < joins && joins < closes && closes < forks,
        "{:?}",
        p.plan
    );
    assert!(
        p.plan[..not_dumpable]
            .iter()
            .all(|o| matches!(o, Op::ResetSignals { .. })),
        "nothing before but the signals"
    );
    let Op::JoinNamespace { nstype, .. } = p.plan[joins] else {
        unreachable!()
    };
    for flag in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ] {
        assert_ne!(nstype & flag, 0, "joins {flag:#x}");
    }
    assert_eq!(
        p.clone_flags,
        libc::CLONE_VM | libc::CLONE_VFORK,
        "no namespace of its own"
    );
    // The sibling runs a PID 1's tail: credentials, no_new_privs and seccomp last.
    assert!(matches!(p.plan.last(), Some(Op::Seccomp(_))));
    assert!(p.plan[forks..].contains(&Op::NoNewPrivs));
}

#[test]
fn a_joined_mount_namespace_is_entered_instead_of_a_new_one_and_needs_a_rootfs() {
    let handles = Handles {
        stdio: [0, 1, 2],
        rootfs: Some(42),
        mntns: Some(43),
        ..Default::default()
    };
    let joined = spec_with(r#","rootfs":"/srv/root","joinPaths":{"mnt":"/proc/9/ns/mnt"}"#);
    let p = joined.prepare(&handles).unwrap();
    assert!(p.plan.iter().any(|o| matches!(
        o,
        Op::EnterRootfs {
            fd: 42,
            join: Some(43),
            ..
        }
    )));
    assert_eq!(p.clone_flags & libc::CLONE_NEWNS, 0);
    let mirror = spec_with(r#","joinPaths":{"mnt":"/proc/9/ns/mnt"}"#);
    assert!(matches!(
        mirror.prepare(&handles),
        Err(SpecError::JoinedMountNamespace)
    ));
}

#[test]
fn the_console_gets_the_spec_size_before_it_is_sent() {
    let handles = Handles {
        stdio: [0, 1, 2],
        console: Some(9),
        ..Default::default()
    };
    let sized = BASE.replacen(
        '{',
        r#"{"tty":true,"ttySize":{"columns":132,"rows":43},"#,
        1,
    );
    let consoles = |s: &str| -> Vec<Option<(u16, u16)>> {
        let p = spec(s).prepare(&handles).unwrap();
        p.plan
            .iter()
            .filter_map(|o| match o {
                Op::Console { size, .. } => Some(*size),
                _ => None,
            })
            .collect()
    };
    assert_eq!(consoles(&sized), [Some((43, 132))]);
    // No size (an OCI config without consoleSize): the kernel's 0x0, as runc.
    assert_eq!(consoles(&BASE.replacen('{', r#"{"tty":true,"#, 1)), [None]);
}

#[test]
fn propagation_every_host_tree_is_cloned_before_mounts_go_private_and_only_an_asked_bind_keeps_its_peers(
) {
    use crate::sys::{MS_PRIVATE, MS_SHARED, MS_SLAVE};
    let s = spec_with(
        r#","rootfs":"/","rootPropagation":"rslave","mounts":[{"type":"bind","source":"/tmp","target":"/a","propagation":"rshared"},{"type":"bind","source":"/tmp","target":"/b"}]"#,
    );
    let mut plan = vec![];
    plan_fn(&s, &mut plan);
    let at = |f: &dyn Fn(&Op) -> bool| plan.iter().position(f).unwrap();
    let private = at(&|o| matches!(o, Op::MakeMountsPrivate));
    let last_clone = plan
        .iter()
        .rposition(|o| matches!(o, Op::CloneTree { .. } | Op::CloneRootfs { .. }))
        .unwrap();
    // A clone made after the namespace went private could never reach the host's peers.
    assert!(last_clone < private);
    assert!(private < at(&|o| matches!(o, Op::AttachRoot { .. })));
    let props: Vec<u64> = plan
        .iter()
        .filter_map(|o| match o {
            Op::CloneTree { propagation, .. } | Op::CloneRootfs { propagation, .. } => {
                Some(*propagation)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        props,
        [MS_SLAVE, 0, MS_PRIVATE],
        "root a slave, the rshared bind as cloned, the plain bind private"
    );
    let set =
        at(&|o| matches!(o, Op::SetPropagation { propagation, .. } if *propagation == MS_SHARED));
    assert!(
        matches!(plan[set - 1], Op::Reclone { .. }) && matches!(plan[set + 1], Op::Attach { .. })
    );
    assert_eq!(plan.last(), Some(&Op::RootPropagation(MS_SLAVE)));
}

#[test]
fn an_image_overlay_is_nosuid_unless_allow_setuid() {
    use crate::sys::MOUNT_ATTR_NOSUID;
    let overlay_attrs = |nosuid: bool| {
        let s = spec_with(&format!(
            r#","image":{{"lowerdirs":["/l"],"upper":"/u","work":"/w"}},"nosuid":{nosuid}"#
        ));
        let mut plan = vec![];
        plan_fn(&s, &mut plan);
        plan.iter()
            .find_map(|o| match o {
                Op::NewFs { fstype, attrs, .. } if fstype.to_str() == Ok("overlay") => Some(*attrs),
                _ => None,
            })
            .expect("an overlay root")
    };
    assert_ne!(overlay_attrs(true) & MOUNT_ATTR_NOSUID, 0);
    // allowSetuid: a layer loaded with keepSetuid has setuid files that must count.
    assert_eq!(overlay_attrs(false) & MOUNT_ATTR_NOSUID, 0);
}

#[test]
fn image_layers_go_one_by_one_where_the_kernel_takes_lowerdir_plus_else_one_string_with_a_clear_limit(
) {
    let layers: Vec<String> = (0..50)
        .map(|i| format!("/var/lib/lonely/layers/sha256/{i:064}/fs"))
        .collect();
    let appended = super::root::lowerdirs(&layers, true).unwrap();
    assert_eq!(appended.len(), 50);
    assert!(appended.iter().all(|(k, _)| k.to_str() == Ok("lowerdir+")));
    assert_eq!(
        appended[0].1.as_deref().unwrap().to_str().unwrap(),
        layers[0],
        "top first"
    );
    let two = super::root::lowerdirs(&["/a".into(), "/b".into()], false).unwrap();
    assert_eq!(two[0].1.as_deref().unwrap().to_str(), Ok("/a:/b"));
    let err = super::root::lowerdirs(&layers, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("50 layers") && err.contains("Linux 6.8"),
        "{err}"
    );
}
