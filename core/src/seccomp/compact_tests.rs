//! The compact default program against an oracle written from the policy, against the two
//! libseccomp filters it replaces, and in the kernel; plus a load-time benchmark (ignored).

use std::collections::HashSet;

use libc::sock_filter;
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};

use super::compact::{self, Conditional};
use super::*;

const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
const ALLOW: u32 = 0x7fff_0000;
#[cfg(target_arch = "x86_64")]
const NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const NATIVE: u32 = 0xC000_00B7;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32: u32 = 0x4000_0000;

/// docker's default capabilities (the bounding set of a default container).
fn docker_caps() -> u64 {
    security::mask(security::DOCKER_DEFAULT).unwrap()
}

fn cap(name: &str) -> u64 {
    security::mask(&[name]).unwrap()
}

fn program_with(guard: bool, caps: u64) -> Vec<sock_filter> {
    default_programs(guard, caps).unwrap()[0].0.to_vec()
}

fn new_program() -> Vec<sock_filter> {
    program_with(false, docker_caps())
}

fn guarded_program() -> Vec<sock_filter> {
    program_with(true, docker_caps())
}

// ---- A classic-BPF interpreter: the subset seccomp programs here use; anything else panics.

/// `struct seccomp_data`: nr, arch, instruction_pointer (0 here), args[6].
#[derive(Clone, Copy, Debug)]
struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Data {
    fn call(nr: u32, args: [u64; 6]) -> Data {
        Data {
            nr,
            arch: NATIVE,
            args,
        }
    }

    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        b
    }
}

fn run(program: &[sock_filter], data: &Data) -> u32 {
    execute(program, data).0
}

/// The verdict and how many instructions it took.
fn execute(program: &[sock_filter], data: &Data) -> (u32, usize) {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const LD_IMM: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_IMM) as u16;
    const AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

    let bytes = data.bytes();
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let i = program[pc];
        pc += 1;
        steps += 1;
        let branch = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
        match i.code {
            LD_W_ABS => {
                let at = i.k as usize;
                assert!(at.is_multiple_of(4) && at + 4 <= 64, "load at {at}");
                a = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
            }
            LD_IMM => a = i.k,
            AND_K => a &= i.k,
            JA => pc += i.k as usize,
            JEQ => pc += branch(a == i.k),
            JGT => pc += branch(a > i.k),
            JGE => pc += branch(a >= i.k),
            JSET => pc += branch(a & i.k != 0),
            RET_K => return (i.k, steps),
            code => panic!("instruction {code:#06x} at {} is not interpreted", pc - 1),
        }
    }
}

/// Several filters as the kernel combines them: the lowest action wins (as i32: KILL_PROCESS
/// < KILL_THREAD < TRAP < ERRNO < USER_NOTIF < TRACE < LOG < ALLOW), the newest on a tie.
fn run_all(programs: &[Vec<sock_filter>], data: &Data) -> u32 {
    let action = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    programs
        .iter()
        .rev()
        .map(|p| run(p, data))
        .reduce(|best, r| if action(r) < action(best) { r } else { best })
        .unwrap()
}

// ---- The oracle: the policy as written, with its own numbers.

struct Oracle {
    clone: u32,
    unshare: u32,
    clone3: u32,
    socket: u32,
    personality: u32,
    ioctl: u32,
    allowed: HashSet<u32>,
    guard: Option<GuardCalls>,
    /// CAP_SYS_ADMIN: clone, unshare and clone3 with any flags.
    namespaces: bool,
    /// The highest number any name of the profile has: above it, ENOSYS.
    ceiling: u32,
}

/// The setuid guard's calls: (nr, mode index), (nr, flags index, mode index), openat2.
type GuardCalls = (Vec<(u32, usize)>, Vec<(u32, usize, usize)>, u32);

impl Oracle {
    fn new() -> Oracle {
        Oracle::with_caps(docker_caps())
    }

    /// docker's rules for a bounding set: each capability's calls join the allowed ones.
    fn with_caps(caps: u64) -> Oracle {
        let nr = |name| syscall_number(name).unwrap();
        let granted = BY_CAPABILITY
            .iter()
            .filter(|(c, _)| caps & cap(c) != 0)
            .flat_map(|(_, names)| names.iter());
        let every_name = ALLOWED
            .iter()
            .chain(DENIED)
            .chain(BY_CAPABILITY.iter().flat_map(|(_, names)| names.iter()));
        Oracle {
            clone: nr("clone"),
            unshare: nr("unshare"),
            clone3: nr("clone3"),
            socket: nr("socket"),
            personality: nr("personality"),
            ioctl: nr("ioctl"),
            allowed: ALLOWED
                .iter()
                .chain(granted)
                .filter_map(|n| syscall_number(n))
                .collect(),
            guard: None,
            namespaces: caps & cap("SYS_ADMIN") != 0,
            ceiling: every_name.filter_map(|n| syscall_number(n)).max().unwrap(),
        }
    }

    fn guarded() -> Oracle {
        Oracle::guarded_with(docker_caps())
    }

    fn guarded_with(caps: u64) -> Oracle {
        let nr = |name| syscall_number(name).unwrap();
        let modes = [
            ("chmod", 1),
            ("fchmod", 1),
            ("fchmodat", 2),
            ("fchmodat2", 2),
            ("creat", 1),
            ("mknod", 1),
            ("mknodat", 2),
        ];
        Oracle {
            guard: Some((
                modes.into_iter().map(|(n, i)| (nr(n), i)).collect(),
                vec![(nr("open"), 1, 2), (nr("openat"), 2, 3)],
                nr("openat2"),
            )),
            ..Oracle::with_caps(caps)
        }
    }

    fn verdict(&self, d: &Data) -> u32 {
        let allow_if = |ok: bool| if ok { ALLOW } else { EPERM };
        let low = |i: usize| d.args[i] as u32;
        if d.arch != NATIVE || (cfg!(target_arch = "x86_64") && d.nr >= X32) {
            return EPERM;
        }
        if d.nr > self.ceiling {
            return ENOSYS;
        }
        if let Some((modes, opens, openat2)) = &self.guard {
            const SETID: u32 = 0o6000;
            if d.nr == *openat2 {
                return ENOSYS;
            }
            if let Some((_, i)) = modes.iter().find(|(n, _)| *n == d.nr) {
                return allow_if(low(*i) & SETID == 0);
            }
            if let Some((_, f, m)) = opens.iter().find(|(n, _, _)| *n == d.nr) {
                let creating = low(*f) & (libc::O_CREAT as u32 | 0o2000_0000) != 0;
                return allow_if(!creating || low(*m) & SETID == 0);
            }
        }
        if self.namespaces && [self.clone, self.unshare, self.clone3].contains(&d.nr) {
            ALLOW
        } else if d.nr == self.clone || d.nr == self.unshare {
            allow_if(low(0) & 0x7E02_0000 == 0)
        } else if d.nr == self.clone3 {
            ENOSYS
        } else if d.nr == self.socket {
            allow_if(low(0) < 38 || low(0) == 39 || low(0) > 40)
        } else if d.nr == self.personality {
            allow_if([0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff].contains(&low(0)))
        } else if d.nr == self.ioctl {
            allow_if(low(1) != 0x5412 && low(1) != 0x541C)
        } else {
            allow_if(self.allowed.contains(&d.nr))
        }
    }

    fn conditional(&self) -> [u32; 6] {
        [
            self.clone,
            self.unshare,
            self.clone3,
            self.socket,
            self.personality,
            self.ioctl,
        ]
    }
}

// ---- The calls to check.

/// Every nr 0..=1023 and its x32 twin with zero args, and a foreign arch.
fn every_number() -> Vec<Data> {
    let mut calls = Vec::new();
    for nr in 0..=1023 {
        calls.push(Data::call(nr, [0; 6]));
        calls.push(Data::call(X32 + nr, [0; 6]));
        calls.push(Data {
            arch: AUDIT_ARCH_I386,
            ..Data::call(nr, [0; 6])
        });
    }
    calls
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Argument values at the policy's edges, with and without high bits, and random ones.
fn interesting_values() -> Vec<u64> {
    let namespace_bits = (0..32).map(|b| 1u64 << b).filter(|b| b & 0x7E02_0000 != 0);
    let mut low: Vec<u64> = vec![
        0,
        1,
        37,
        38,
        39,
        40,
        41,
        u64::from(u32::MAX),
        8,
        0x20000,
        0x20008,
        0x0040_0000, // READ_IMPLIES_EXEC
        0x5411,
        0x5412,
        0x5413,
        0x541B,
        0x541C,
        0x541D,
        0x7E02_0000,
        0x11,        // fork: SIGCHLD
        0x003D_0F00, // glibc's pthread_create flags
        0x7E02_0011,
    ];
    low.extend(namespace_bits.clone());
    low.extend(namespace_bits.clone().map(|b| b | 0x11));
    low.extend(namespace_bits.map(|b| b | 0x003D_0F00));
    let mut values = low.clone();
    for high in [1u64 << 32, 0xffff_ffff_0000_0000, 1 << 63] {
        values.extend(low.iter().map(|v| v | high));
    }
    let mut state = 0x2545_F491_4F6C_DD1D;
    for _ in 0..500 {
        let r = xorshift(&mut state);
        values.extend([r, r & 0xffff_ffff, r & 0xff, (r & 0xff) | 1 << 32]);
    }
    values
}

/// The conditional syscalls with each value in args[0], in args[1], and in both.
fn conditional_calls(o: &Oracle) -> Vec<Data> {
    let mut calls = Vec::new();
    for nr in o.conditional() {
        for v in interesting_values() {
            for args in [[v, 0, 0, 0, 0, 0], [0, v, 0, 0, 0, 0], [v, v, v, v, v, v]] {
                calls.push(Data::call(nr, args));
            }
        }
    }
    calls
}

/// Every nr with a few random argument vectors: plain syscalls ignore their args.
fn random_calls() -> Vec<Data> {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    let mut calls = Vec::new();
    for nr in 0..=1023 {
        for _ in 0..4 {
            calls.push(Data::call(
                nr,
                std::array::from_fn(|_| xorshift(&mut state)),
            ));
        }
    }
    calls
}

// ---- The two libseccomp filters the compact program replaces.

fn old_context(default: ScmpAction) -> ScmpFilterContext {
    let mut ctx = ScmpFilterContext::new(default).unwrap();
    ctx.set_act_badarch(ScmpAction::Errno(libc::EPERM)).unwrap();
    ctx.set_ctl_nnp(false).unwrap();
    ctx.set_ctl_optimize(2).unwrap();
    ctx
}

fn old_allowlist() -> Vec<sock_filter> {
    let eperm = ScmpAction::Errno(libc::EPERM);
    let allow = ScmpAction::Allow;
    let mut ctx = old_context(eperm);
    let arg0 = |op, datum: u32| [ScmpArgCompare::new(0, op, u64::from(datum))];
    for name in ALLOWED {
        if let Some(s) = syscall(name) {
            ctx.add_rule(allow, s).unwrap();
        }
    }
    for name in ["clone", "unshare"] {
        let masked = ScmpCompareOp::MaskedEqual(u64::from(NAMESPACE_FLAGS));
        let s = syscall(name).unwrap();
        ctx.add_rule_conditional(allow, s, &arg0(masked, 0))
            .unwrap();
    }
    ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), syscall("clone3").unwrap())
        .unwrap();
    let socket = syscall("socket").unwrap();
    for rule in [
        arg0(ScmpCompareOp::Less, AF_ALG),
        arg0(ScmpCompareOp::Equal, AF_ALG + 1),
        arg0(ScmpCompareOp::Greater, AF_VSOCK),
    ] {
        ctx.add_rule_conditional(allow, socket, &rule).unwrap();
    }
    let personality = syscall("personality").unwrap();
    for p in PERSONALITIES {
        let rule = arg0(ScmpCompareOp::Equal, *p);
        ctx.add_rule_conditional(allow, personality, &rule).unwrap();
    }
    export(&ctx).unwrap().0.to_vec()
}

fn old_terminal_guard() -> Vec<sock_filter> {
    let eperm = ScmpAction::Errno(libc::EPERM);
    let mut ctx = old_context(ScmpAction::Allow);
    let ioctl = syscall("ioctl").unwrap();
    for request in [TIOCSTI, TIOCLINUX] {
        let low_word = ScmpCompareOp::MaskedEqual(0xffff_ffff);
        let rule = [ScmpArgCompare::new(1, low_word, u64::from(request))];
        ctx.add_rule_conditional(eperm, ioctl, &rule).unwrap();
    }
    export(&ctx).unwrap().0.to_vec()
}

fn old_programs() -> Vec<Vec<sock_filter>> {
    vec![old_allowlist(), old_terminal_guard()]
}

/// Where the compact program answers differently from the libseccomp filters, on purpose: they
/// compared all 64 bits of an argument the kernel reads as 32 (`int family`, `unsigned int
/// personality`). Returns (old verdict, new verdict).
/// And above the highest known number the old filters answered EPERM, the new one ENOSYS.
fn intended_difference(o: &Oracle, d: &Data) -> Option<(u32, u32)> {
    let high_bits = d.args[0] >> 32 != 0;
    let low = d.args[0] as u32;
    let x32 = cfg!(target_arch = "x86_64") && d.nr >= X32;
    if d.arch == NATIVE && !x32 && d.nr > o.ceiling {
        return Some((EPERM, ENOSYS));
    }
    if d.arch != NATIVE || !high_bits {
        return None;
    }
    if d.nr == o.socket && (low == 38 || low == 40) {
        // AF_ALG|1<<32, AF_VSOCK|1<<32: passed `Greater(40)`, the kernel made the socket.
        Some((ALLOW, EPERM))
    } else if d.nr == o.personality && PERSONALITIES.contains(&low) {
        // An allowed persona with high bits: the kernel sees the allowed persona.
        Some((EPERM, ALLOW))
    } else {
        None
    }
}

// ---- The tests.

#[test]
fn every_jump_lands_forward_inside_the_program() {
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    let p = new_program();
    assert!(p.len() <= libc::BPF_MAXINSNS as usize);
    for (at, i) in p.iter().enumerate() {
        let targets: Vec<usize> = match u32::from(i.code) & 0x07 {
            libc::BPF_JMP if i.code == JA => vec![i.k as usize],
            libc::BPF_JMP => vec![usize::from(i.jt), usize::from(i.jf)],
            _ => vec![],
        };
        for t in targets {
            assert!(at + 1 + t < p.len(), "jump at {at} leaves the program");
        }
    }
    let last = p.last().unwrap();
    assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K);
}

#[test]
fn the_program_is_small_and_the_allowlist_is_ranges() {
    let conditional = Conditional::resolve().unwrap();
    let plain = compact::plain_syscalls(&conditional, None, docker_caps());
    let runs = compact::runs(&plain);
    let len = new_program().len();
    println!(
        "{} allowed numbers in {} runs: {runs:?}",
        plain.len(),
        runs.len()
    );
    println!("compact program: {len} instructions");
    assert!(runs.len() < 60, "{} runs", runs.len());
    assert!(len < 2 * runs.len() + 40, "{len} instructions");
    for nr in Oracle::new().conditional() {
        assert!(
            runs.iter().all(|&(lo, hi)| !(lo..=hi).contains(&nr)),
            "{nr} is checked on its args, never in a plain range"
        );
    }
}

#[test]
fn the_search_is_balanced() {
    let p = new_program();
    let longest = every_number()
        .iter()
        .map(|d| execute(&p, d).1)
        .max()
        .unwrap();
    // 4 (arch, nr, x32) + 6 (conditional JEQs) + 6 (log2 of ~60 stretches) + 1 (RET): 17.
    assert!(longest <= 18, "a syscall takes {longest} instructions");
}

#[test]
fn too_long_a_jump_is_refused_not_truncated() {
    let o = Oracle::new();
    let conditional = Conditional {
        clone: o.clone,
        unshare: o.unshare,
        clone3: o.clone3,
        socket: o.socket,
        personality: o.personality,
        ioctl: o.ioctl,
        namespaces: false,
    };
    let every_other: Vec<u32> = (0..600).map(|n| 2 * n + 1000).collect();
    let err = compact::emit(&conditional, None, &every_other, u32::MAX).unwrap_err();
    assert!(err.to_string().contains("does not fit in u8"), "{err}");
}

#[test]
fn every_syscall_number_gets_the_oracles_verdict() {
    let (o, p) = (Oracle::new(), new_program());
    for d in every_number().iter().chain(&random_calls()) {
        assert_eq!(run(&p, d), o.verdict(d), "{d:x?}");
    }
}

#[test]
fn as_docker_a_number_above_the_highest_known_is_enosys_and_denied_calls_stay_eperm() {
    let p = new_program();
    let ceiling = compact::highest_known();
    let nr = |name| syscall_number(name).unwrap();
    println!("highest syscall number the profile knows: {ceiling}");
    assert!(
        ceiling >= nr("futex_waitv"),
        "every allowed name is at or below it"
    );
    let call = |n| run(&p, &Data::call(n, [0; 6]));
    for above in [ceiling + 1, ceiling + 2, 1000, 0x3fff_ffff] {
        assert_eq!(call(above), ENOSYS, "{above}: newer than the profile");
    }
    assert_ne!(
        call(ceiling),
        ENOSYS,
        "the highest known number is not unknown"
    );
    for denied in DENIED.iter().filter_map(|n| syscall_number(n)) {
        assert_eq!(call(denied), EPERM, "{denied}: denied on purpose");
    }
    for name in ["kexec_load", "add_key", "mount", "bpf", "reboot"] {
        assert_eq!(call(nr(name)), EPERM, "{name}");
    }
    // A number below the highest that no name of the profile has: denied, not unknown.
    let gap = (0..ceiling)
        .find(|n| {
            !ALLOWED
                .iter()
                .chain(DENIED)
                .chain(BY_CAPABILITY.iter().flat_map(|(_, names)| names.iter()))
                .any(|name| syscall_number(name) == Some(*n))
                && !Oracle::new().conditional().contains(n)
        })
        .unwrap();
    assert_eq!(call(gap), EPERM, "{gap}: at or below the highest known");
    // The refused ABIs stay refused, whatever the number.
    if cfg!(target_arch = "x86_64") {
        assert_eq!(call(X32 + 1000), EPERM, "x32");
        assert_eq!(call(u32::MAX), EPERM, "x32 range");
    }
    let i386 = Data {
        arch: AUDIT_ARCH_I386,
        ..Data::call(1000, [0; 6])
    };
    assert_eq!(run(&p, &i386), EPERM, "i386");
}

/// Single capabilities of every rule, none, and all of them.
fn capability_sets() -> Vec<u64> {
    let mut sets: Vec<u64> = BY_CAPABILITY.iter().map(|(c, _)| cap(c)).collect();
    sets.extend([
        0,
        docker_caps(),
        u64::MAX >> 23,
        docker_caps() | cap("SYS_ADMIN"),
    ]);
    sets
}

#[test]
fn as_docker_each_capability_widens_the_profile_by_its_rule_and_nothing_else() {
    for caps in capability_sets() {
        let (o, p) = (Oracle::with_caps(caps), program_with(false, caps));
        let calls = every_number()
            .into_iter()
            .chain(random_calls())
            .chain(conditional_calls(&o));
        for d in calls {
            assert_eq!(run(&p, &d), o.verdict(&d), "caps {caps:#x}: {d:x?}");
        }
        assert!(p.len() < 150, "caps {caps:#x}: {} instructions", p.len());
        let longest = every_number().iter().map(|d| execute(&p, d).1).max();
        assert!(longest.unwrap() <= 18, "caps {caps:#x}: {longest:?} steps");
    }
}

#[test]
fn as_docker_sys_admin_allows_mount_and_namespaces_but_our_argument_rules_hold() {
    let nr = |name| syscall_number(name).unwrap();
    let (plain, admin) = (
        new_program(),
        program_with(false, docker_caps() | cap("SYS_ADMIN")),
    );
    let newuser = libc::CLONE_NEWUSER as u64;
    let verdicts = |call: Data| (run(&plain, &call), run(&admin, &call));
    let zero = [0; 6];
    for name in [
        "mount",
        "umount2",
        "setns",
        "fsopen",
        "open_tree",
        "sethostname",
    ] {
        assert_eq!(
            verdicts(Data::call(nr(name), zero)),
            (EPERM, ALLOW),
            "{name}"
        );
    }
    for name in ["unshare", "clone"] {
        let call = Data::call(nr(name), [newuser, 0, 0, 0, 0, 0]);
        assert_eq!(verdicts(call), (EPERM, ALLOW), "{name}(CLONE_NEWUSER)");
    }
    let clone3 = Data::call(nr("clone3"), zero);
    assert_eq!(verdicts(clone3), (ENOSYS, ALLOW), "clone3");
    // Ours, whatever the capabilities: terminal injection, AF_ALG/AF_VSOCK, keyrings, x32.
    let tiocsti = Data::call(nr("ioctl"), [0, u64::from(TIOCSTI) | 1 << 32, 0, 0, 0, 0]);
    let vsock = Data::call(nr("socket"), [u64::from(AF_VSOCK), 1, 0, 0, 0, 0]);
    for call in [tiocsti, vsock, Data::call(nr("keyctl"), zero)] {
        assert_eq!(verdicts(call), (EPERM, EPERM), "{call:x?}");
    }
    for name in DENIED.iter().filter_map(|n| syscall_number(n)) {
        let everything = program_with(false, u64::MAX >> 23);
        assert_eq!(run(&everything, &Data::call(name, zero)), EPERM, "{name}");
    }
    // The guard holds with SYS_ADMIN too.
    let (o, guarded) = (
        Oracle::guarded_with(cap("SYS_ADMIN")),
        program_with(true, cap("SYS_ADMIN")),
    );
    for d in guard_calls(&o).iter().chain(&conditional_calls(&o)) {
        assert_eq!(run(&guarded, d), o.verdict(d), "{d:x?}");
    }
}

/// The guard's calls with each interesting flags and mode value in every argument position.
fn guard_calls(o: &Oracle) -> Vec<Data> {
    let (modes, opens, openat2) = o.guard.as_ref().unwrap();
    let nrs = modes
        .iter()
        .map(|m| m.0)
        .chain(opens.iter().map(|o| o.0))
        .chain([*openat2]);
    let values = [
        0,
        0o755,
        0o4755,
        0o2755,
        0o6000,
        0o1777,
        0o100,
        0o2000_0000,
        0o100 | 0o4755,
        1 << 32 | 0o4000,
        0o4000 << 32,
    ];
    let mut calls = Vec::new();
    for nr in nrs {
        for a in values {
            for b in values {
                for args in [
                    [a, b, 0, 0, 0, 0],
                    [0, a, b, 0, 0, 0],
                    [0, 0, a, b, 0, 0],
                    [a, a, b, b, b, b],
                ] {
                    calls.push(Data::call(nr, args));
                }
            }
        }
    }
    calls
}

#[test]
fn the_setuid_guard_refuses_setid_modes_and_nothing_else() {
    let (o, p) = (Oracle::guarded(), guarded_program());
    let calls: Vec<Data> = every_number()
        .into_iter()
        .chain(random_calls())
        .chain(conditional_calls(&o))
        .chain(guard_calls(&o))
        .collect();
    for d in &calls {
        assert_eq!(run(&p, d), o.verdict(d), "{d:x?}");
    }
    let refused = guard_calls(&o)
        .iter()
        .filter(|d| run(&p, d) == EPERM)
        .count();
    assert!(refused > 0, "control: some setid modes are refused");
    // Control: without the guard, every one of these calls is allowed (but openat2's ENOSYS-free).
    let plain = new_program();
    assert!(
        guard_calls(&o).iter().all(|d| run(&plain, d) == ALLOW),
        "unguarded: all allowed"
    );
    assert!(
        guarded_program().len() < 150,
        "{} instructions",
        guarded_program().len()
    );
}

#[test]
fn conditional_syscalls_get_the_oracles_verdict() {
    let (o, p) = (Oracle::new(), new_program());
    let calls = conditional_calls(&o);
    for d in &calls {
        assert_eq!(run(&p, d), o.verdict(d), "{d:x?}");
    }
    let verdicts: HashSet<u32> = calls.iter().map(|d| run(&p, d)).collect();
    assert_eq!(verdicts.len(), 3, "ALLOW, EPERM and ENOSYS all occur");
}

#[test]
fn the_compact_program_agrees_with_the_old_libseccomp_filters() {
    let (o, new, old) = (Oracle::new(), new_program(), old_programs());
    println!("old: {} + {} instructions", old[0].len(), old[1].len());
    let mut differences = HashSet::new();
    let mut unknown = 0;
    let calls = every_number()
        .into_iter()
        .chain(random_calls())
        .chain(conditional_calls(&o));
    for d in calls {
        let (was, is) = (run_all(&old, &d), run(&new, &d));
        match intended_difference(&o, &d) {
            Some(expected) => {
                assert_eq!((was, is), expected, "{d:x?}");
                if is == ENOSYS {
                    unknown += 1;
                } else {
                    differences.insert((d.nr, d.args[0] as u32));
                }
            }
            None => assert_eq!(is, was, "{d:x?}"),
        }
    }
    let expected: HashSet<(u32, u32)> = [38, 40]
        .map(|family| (o.socket, family))
        .into_iter()
        .chain(PERSONALITIES.iter().map(|p| (o.personality, *p)))
        .collect();
    assert_eq!(
        differences, expected,
        "every intended difference is exercised"
    );
    assert!(unknown > 0, "numbers above the highest known are exercised");
}

// ---- In the kernel.

/// Runs `child` in a forked child and returns its exit status. The test harness has threads:
/// the child must only make async-signal-safe calls.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => unsafe { libc::_exit(child()) },
        pid => {
            let mut status = 0;
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status), "child status {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }
}

fn set_no_new_privs() -> bool {
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) == 0 }
}

/// Each program in order; false if the kernel refused one.
fn load_filters(programs: &[&[sock_filter]]) -> bool {
    programs.iter().all(|p| {
        let prog = libc::sock_fprog {
            len: p.len() as u16,
            filter: p.as_ptr() as *mut sock_filter,
        };
        let mode = libc::SECCOMP_MODE_FILTER as libc::c_ulong;
        unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                mode,
                &prog as *const _ as libc::c_ulong,
            ) == 0
        }
    })
}

fn load(programs: &[&[sock_filter]]) -> bool {
    set_no_new_privs() && load_filters(programs)
}

/// The errno of a raw syscall, 0 if it succeeded.
fn errno_of(result: libc::c_long) -> i32 {
    if result >= 0 {
        0
    } else {
        nix::errno::Errno::last_raw()
    }
}

fn vsock_with_high_bits() -> i32 {
    let family = libc::c_long::from(libc::AF_VSOCK) | 1 << 32;
    let stream = libc::c_long::from(libc::SOCK_STREAM);
    errno_of(unsafe { libc::syscall(libc::SYS_socket, family, stream, 0 as libc::c_long) })
}

#[test]
fn the_kernel_enforces_the_compact_program() {
    let p = new_program();
    let status = in_child(|| unsafe {
        if !load(&[&p]) {
            return 1;
        }
        let (zero, null) = (0 as libc::c_long, 0 as libc::c_long);
        let alg = libc::c_long::from(libc::AF_ALG) | 1 << 32;
        let seqpacket = libc::c_long::from(libc::SOCK_SEQPACKET);
        let tiocsti = libc::c_long::from(TIOCSTI) | 1 << 32;
        let newuser = libc::c_long::from(libc::CLONE_NEWUSER);
        let x32_getpid = libc::c_long::from(X32) | libc::SYS_getpid;
        let checks = [
            libc::getpid() > 0,
            vsock_with_high_bits() == libc::EPERM,
            errno_of(libc::syscall(libc::SYS_socket, alg, seqpacket, zero)) == libc::EPERM,
            libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) >= 0,
            errno_of(libc::syscall(libc::SYS_mount, null, null, null, zero, null)) == libc::EPERM,
            errno_of(libc::syscall(libc::SYS_clone3, null, zero)) == libc::ENOSYS,
            errno_of(libc::syscall(
                libc::SYS_ioctl,
                -1 as libc::c_long,
                tiocsti,
                null,
            )) == libc::EPERM,
            errno_of(libc::syscall(libc::SYS_unshare, newuser)) == libc::EPERM,
            !cfg!(target_arch = "x86_64") || errno_of(libc::syscall(x32_getpid)) == libc::EPERM,
            // Newer than the profile: ENOSYS, as docker's; denied on purpose: EPERM.
            errno_of(libc::syscall(1000)) == libc::ENOSYS,
            errno_of(libc::syscall(libc::SYS_kexec_load, zero, zero, null, zero)) == libc::EPERM,
            errno_of(libc::syscall(
                libc::SYS_add_key,
                null,
                null,
                null,
                zero,
                zero,
            )) == libc::EPERM,
        ];
        match checks.iter().position(|ok| !ok) {
            Some(failed) => 10 + failed as i32,
            None => 0,
        }
    });
    assert_eq!(status, 0, "1: not loaded; 10 + n: check n failed");
}

#[test]
fn without_the_compact_program_vsock_with_high_bits_is_not_eperm() {
    // The control: EPERM above comes from the filter (here: a socket, or EAFNOSUPPORT).
    assert_ne!(in_child(vsock_with_high_bits), libc::EPERM);
    // And the old filters let it through, the bypass the compact program closes.
    let old = old_programs();
    let status = in_child(|| {
        if !load(&[&old[0], &old[1]]) {
            return 1;
        }
        vsock_with_high_bits()
    });
    assert!(status != 1 && status != libc::EPERM, "status {status}");
}

// ---- The load-time benchmark: cargo test --release -- --ignored --nocapture

/// Nanoseconds the kernel took to load `programs`, in a fresh child (after no_new_privs).
fn load_time_in_child(programs: &[&[sock_filter]]) -> u64 {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let [read_end, write_end] = fds;
    let now = || {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    };
    let status = in_child(|| {
        if !set_no_new_privs() {
            return 1;
        }
        let start = now();
        if !load_filters(programs) {
            return 2;
        }
        let took = (now() - start).to_ne_bytes();
        match unsafe { libc::write(write_end, took.as_ptr().cast(), 8) } {
            8 => 0,
            _ => 3,
        }
    });
    let mut took = [0u8; 8];
    let read = unsafe { libc::read(read_end, took.as_mut_ptr().cast(), 8) };
    unsafe {
        libc::close(read_end);
        libc::close(write_end);
    }
    assert_eq!((status, read), (0, 8));
    u64::from_ne_bytes(took)
}

fn median_us(mut ns: Vec<u64>) -> f64 {
    ns.sort_unstable();
    ns[ns.len() / 2] as f64 / 1000.0
}

#[test]
#[ignore = "benchmark: forks 4000 children"]
fn bench_load_old_two_programs_vs_compact() {
    const N: usize = 2000;
    let (old, new) = (old_programs(), new_program());
    let (mut old_ns, mut new_ns) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for _ in 0..N {
        old_ns.push(load_time_in_child(&[&old[0], &old[1]]));
        new_ns.push(load_time_in_child(&[&new]));
    }
    println!(
        "old: {} + {} instructions, median {:.1} µs per load",
        old[0].len(),
        old[1].len(),
        median_us(old_ns)
    );
    println!(
        "new: {} instructions, median {:.1} µs per load",
        new.len(),
        median_us(new_ns)
    );
}
