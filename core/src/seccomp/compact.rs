//! The default profile as ONE classic-BPF program from our own emitter: the arch and x32
//! checks, the syscalls whose arguments matter, then a balanced binary search over the runs of
//! allowed syscall numbers, which also answers ENOSYS above the highest number the profile
//! knows (a call newer than the profile: libc and runtimes fall back, as under runc/docker).

use libc::sock_filter;

use super::{
    security, sys_admin, syscall_number, SeccompError, AF_ALG, AF_VSOCK, ALLOWED, BY_CAPABILITY,
    DENIED, NAMESPACE_FLAGS, PERSONALITIES, TIOCLINUX, TIOCSTI,
};

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("the default seccomp program knows x86_64 and aarch64 (little-endian) only");

/// AUDIT_ARCH of the native ABI (`struct seccomp_data.arch`).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7;
/// x32 syscalls reach the x86_64 entry with this bit set in `nr`.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

const fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & 0xffff)
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// The low 32 bits of `args[i]` (both supported architectures are little-endian).
const fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}

/// The syscalls checked before the search, on their arguments (or not at all: clone3).
pub(super) struct Conditional {
    pub clone: u32,
    pub unshare: u32,
    pub clone3: u32,
    pub socket: u32,
    pub personality: u32,
    pub ioctl: u32,
    /// CAP_SYS_ADMIN (docker's rule): clone, unshare and clone3 are plain allowed calls, any flags.
    pub namespaces: bool,
}

impl Conditional {
    pub(super) fn resolve() -> Result<Self, SeccompError> {
        let nr = |name| {
            syscall_number(name).ok_or_else(|| {
                SeccompError::Default(format!("this libseccomp does not know `{name}`"))
            })
        };
        Ok(Conditional {
            clone: nr("clone")?,
            unshare: nr("unshare")?,
            clone3: nr("clone3")?,
            socket: nr("socket")?,
            personality: nr("personality")?,
            ioctl: nr("ioctl")?,
            namespaces: false,
        })
    }

    /// The calls checked on their arguments before the search.
    fn checked(&self) -> Vec<u32> {
        let mut nrs = vec![self.socket, self.personality, self.ioctl];
        if !self.namespaces {
            nrs.extend([self.clone, self.unshare, self.clone3]);
        }
        nrs
    }

    fn contains(&self, nr: u32) -> bool {
        self.checked().contains(&nr)
    }
}

/// With the setuid guard: every call that sets a file's mode, refused when the mode has
/// S_ISUID or S_ISGID (a container writing into a host directory must not leave a setuid file).
pub(super) struct ModeGuard {
    /// (nr, index of the mode argument): chmod, fchmod, fchmodat, fchmodat2, creat, mknod, mknodat.
    pub modes: Vec<(u32, u32)>,
    /// (nr, index of the flags, index of the mode): open, openat read the mode only with
    /// O_CREAT or O_TMPFILE (otherwise the register is garbage).
    pub opens: Vec<(u32, u32, u32)>,
    /// openat2 keeps its mode in memory: ENOSYS, and callers fall back to openat.
    pub openat2: u32,
}

/// S_ISUID | S_ISGID.
pub(super) const SETID_BITS: u32 = 0o6000;
/// O_CREAT | __O_TMPFILE: the open flags that make a mode count.
pub(super) const CREATING: u32 = 0o100 | 0o2000_0000;

impl ModeGuard {
    pub(super) fn resolve() -> Result<Self, SeccompError> {
        // Names this architecture lacks (aarch64 has no chmod, creat, mknod, open) are skipped.
        let nr = syscall_number;
        let modes = [
            ("chmod", 1),
            ("fchmod", 1),
            ("fchmodat", 2),
            ("fchmodat2", 2),
            ("creat", 1),
            ("mknod", 1),
            ("mknodat", 2),
        ];
        Ok(ModeGuard {
            modes: modes
                .into_iter()
                .filter_map(|(name, arg)| nr(name).map(|n| (n, arg)))
                .collect(),
            opens: [("open", 1, 2), ("openat", 2, 3)]
                .into_iter()
                .filter_map(|(name, f, m)| nr(name).map(|n| (n, f, m)))
                .collect(),
            openat2: nr("openat2").ok_or_else(|| {
                SeccompError::Default("this libseccomp does not know `openat2`".into())
            })?,
        })
    }

    fn contains(&self, nr: u32) -> bool {
        nr == self.openat2
            || self.modes.iter().any(|(n, _)| *n == nr)
            || self.opens.iter().any(|(n, _, _)| *n == nr)
    }
}

/// The default profile's program, from the policy tables in `mod.rs`, for a container whose
/// bounding set is `capabilities`; with `guard`, the setuid guard too.
pub(super) fn default_program(
    guard: bool,
    capabilities: u64,
) -> Result<Vec<sock_filter>, SeccompError> {
    let mut conditional = Conditional::resolve()?;
    conditional.namespaces = capabilities & sys_admin() != 0;
    let guard = guard.then(ModeGuard::resolve).transpose()?;
    emit(
        &conditional,
        guard.as_ref(),
        &plain_syscalls(&conditional, guard.as_ref(), capabilities),
        highest_known(),
    )
}

/// The calls BY_CAPABILITY allows to a container whose bounding set is `capabilities`.
pub(super) fn granted(capabilities: u64) -> impl Iterator<Item = &'static str> {
    BY_CAPABILITY
        .iter()
        .filter(move |(cap, _)| {
            capabilities & security::mask(&[cap]).expect("known capabilities") != 0
        })
        .flat_map(|(_, names)| names.iter().copied())
}

/// The allowed syscalls whose arguments do not matter: ALLOWED and what the capabilities grant,
/// but for the conditional ones.
pub(super) fn plain_syscalls(
    conditional: &Conditional,
    guard: Option<&ModeGuard>,
    capabilities: u64,
) -> Vec<u32> {
    ALLOWED
        .iter()
        .copied()
        .chain(granted(capabilities))
        .filter_map(syscall_number)
        .filter(|nr| !conditional.contains(*nr) && !guard.is_some_and(|g| g.contains(*nr)))
        .collect()
}

/// The highest native syscall number the profile knows: of every name it allows, checks, grants
/// with a capability or denies on purpose, as this libseccomp's table numbers them (runc's rule:
/// the highest number in the profile). Above it a call is newer than the profile: ENOSYS.
/// A name this libseccomp lacks is unknown to the profile too (it could not be allowed).
pub(super) fn highest_known() -> u32 {
    let checked = [
        "clone",
        "unshare",
        "clone3",
        "socket",
        "personality",
        "ioctl",
    ];
    ALLOWED
        .iter()
        .chain(DENIED)
        .chain(BY_CAPABILITY.iter().flat_map(|(_, names)| names.iter()))
        .chain(&checked)
        .filter_map(|name| syscall_number(name))
        .max()
        .expect("the profile names syscalls")
}

/// Our own emitter because libseccomp cannot emit range checks (one JEQ per syscall), and the
/// kernel's cost to load a filter (convert + JIT) is linear in its length.
/// Numbers above `ceiling` (below the x32 range) answer ENOSYS, the others the profile's verdict.
pub(super) fn emit(
    conditional: &Conditional,
    guard: Option<&ModeGuard>,
    plain: &[u32],
    ceiling: u32,
) -> Result<Vec<sock_filter>, SeccompError> {
    if let Some(nr) = plain.iter().find(|nr| **nr > ceiling) {
        return Err(SeccompError::Default(format!(
            "syscall {nr} is allowed but above the highest known, {ceiling}"
        )));
    }
    let mut e = Emitter::default();
    let [allow, deny, enosys] = [e.label(), e.label(), e.label()];
    let [clone_flags, socket_family, persona, ioctl_request] =
        [e.label(), e.label(), e.label(), e.label()];

    // Only the native ABI: i386 and x32 entry points answer like a denied call (refused on
    // purpose: EPERM, not the ENOSYS of an unknown number).
    e.load(ARCH);
    e.jump(JEQ, AUDIT_ARCH_NATIVE, Next, To(deny));
    e.load(NR);
    if cfg!(target_arch = "x86_64") {
        e.jump(JGE, X32_SYSCALL_BIT, To(deny), Next);
    }
    // clone3 hides its flags in memory, so it answers ENOSYS and libc falls back to clone.
    // With CAP_SYS_ADMIN, clone, unshare and clone3 are in the search as plain allowed calls.
    let c = conditional;
    let namespaced = [
        (c.clone, clone_flags),
        (c.unshare, clone_flags),
        (c.clone3, enosys),
    ];
    let namespaced = if c.namespaces {
        &[][..]
    } else {
        &namespaced[..]
    };
    for &(nr, block) in namespaced.iter().chain(&[
        (c.socket, socket_family),
        (c.personality, persona),
        (c.ioctl, ioctl_request),
    ]) {
        e.jump(JEQ, nr, To(block), Next);
    }
    // One block per argument layout: (mode index) or (flags index, mode index).
    let mut mode_blocks: Vec<(u32, Label)> = vec![];
    let mut open_blocks: Vec<((u32, u32), Label)> = vec![];
    if let Some(g) = guard {
        e.jump(JEQ, g.openat2, To(enosys), Next);
        for &(nr, arg) in &g.modes {
            let block = match mode_blocks.iter().find(|(a, _)| *a == arg) {
                Some((_, l)) => *l,
                None => {
                    let l = e.label();
                    mode_blocks.push((arg, l));
                    l
                }
            };
            e.jump(JEQ, nr, To(block), Next);
        }
        for &(nr, flags, mode) in &g.opens {
            let l = e.label();
            open_blocks.push(((flags, mode), l));
            e.jump(JEQ, nr, To(l), Next);
        }
    }
    search(
        &mut e,
        &stretches(&runs(plain), ceiling),
        [allow, deny, enosys],
    );
    for (arg, block) in mode_blocks {
        e.bind(block);
        no_setid_bits(&mut e, arg, allow, deny);
    }
    for ((flags, mode), block) in open_blocks {
        e.bind(block);
        e.load(arg_low(flags));
        e.jump(JSET, CREATING, Next, To(allow));
        no_setid_bits(&mut e, mode, allow, deny);
    }

    if !c.namespaces {
        e.bind(clone_flags);
        without_namespace_flags(&mut e, allow, deny);
    }
    e.bind(socket_family);
    neither_alg_nor_vsock(&mut e, allow, deny);
    e.bind(persona);
    allowed_personality(&mut e, allow, deny);
    e.bind(ioctl_request);
    no_terminal_injection(&mut e, allow, deny);

    e.bind(allow);
    e.ret(ALLOW);
    e.bind(deny);
    e.ret(errno(libc::EPERM));
    e.bind(enosys);
    e.ret(errno(libc::ENOSYS));
    e.finish()
}

/// A mode (`mode_t`, so the low word) without S_ISUID or S_ISGID.
fn no_setid_bits(e: &mut Emitter, arg: u32, allow: Label, deny: Label) {
    e.load(arg_low(arg));
    e.jump(JSET, SETID_BITS, To(deny), To(allow));
}

/// clone, unshare: no namespace flag. NAMESPACE_FLAGS has no high bits, so the low word
/// decides, as libseccomp's 64-bit MaskedEqual did.
fn without_namespace_flags(e: &mut Emitter, allow: Label, deny: Label) {
    e.load(arg_low(0));
    e.jump(JSET, NAMESPACE_FLAGS, To(deny), To(allow));
}

/// socket: every family but AF_ALG (kernel crypto, a history of bugs) and AF_VSOCK (the
/// hypervisor). The family is an `int`: only its low 32 bits count, so AF_VSOCK|1<<32 is
/// caught (libseccomp compared 64 bits, and that passed `> AF_VSOCK`).
fn neither_alg_nor_vsock(e: &mut Emitter, allow: Label, deny: Label) {
    e.load(arg_low(0));
    e.jump(JGE, AF_ALG, Next, To(allow));
    e.jump(JEQ, AF_ALG + 1, To(allow), Next);
    e.jump(JGT, AF_VSOCK, To(allow), To(deny));
}

/// personality: an `unsigned int`, one of docker's personas.
fn allowed_personality(e: &mut Emitter, allow: Label, deny: Label) {
    e.load(arg_low(0));
    let (last, others) = PERSONALITIES.split_last().expect("personas");
    for p in others {
        e.jump(JEQ, *p, To(allow), Next);
    }
    e.jump(JEQ, *last, To(allow), To(deny));
}

/// ioctl: anything but TIOCSTI and TIOCLINUX, compared on the low 32 bits of the request as
/// the tty layer reads it (so TIOCSTI|1<<32 is caught too; docker's profile misses both).
fn no_terminal_injection(e: &mut Emitter, allow: Label, deny: Label) {
    e.load(arg_low(1));
    e.jump(JEQ, TIOCSTI, To(deny), Next);
    e.jump(JEQ, TIOCLINUX, To(deny), To(allow));
}

/// Sorted, merged, inclusive runs of syscall numbers.
pub(super) fn runs(nrs: &[u32]) -> Vec<(u32, u32)> {
    let mut sorted = nrs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for nr in sorted {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == nr => *hi = nr,
            _ => runs.push((nr, nr)),
        }
    }
    runs
}

/// What a stretch of syscall numbers answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    Allow,
    Deny,
    /// Above the highest number the profile knows: ENOSYS.
    Unknown,
}

/// From `start` up to the next stretch's start, every number gets `verdict`.
#[derive(Clone, Copy, Debug)]
struct Stretch {
    start: u32,
    verdict: Verdict,
}

/// The whole u32 line cut into stretches, the first at 0: alternating denied and allowed up to
/// `ceiling` (every run is at or below it), unknown above.
fn stretches(runs: &[(u32, u32)], ceiling: u32) -> Vec<Stretch> {
    let at = |start, verdict| Stretch { start, verdict };
    let mut line = vec![at(0, Verdict::Deny)];
    for &(lo, hi) in runs {
        if lo == 0 {
            line[0].verdict = Verdict::Allow;
        } else {
            line.push(at(lo, Verdict::Allow));
        }
        if let Some(after) = hi.checked_add(1) {
            line.push(at(after, Verdict::Deny));
        }
    }
    if let Some(after) = ceiling.checked_add(1) {
        line.retain(|s| s.start < after);
        line.push(at(after, Verdict::Unknown));
    }
    line
}

/// A balanced binary search over the stretches, the accumulator holding `nr` and known to be at
/// least `line[0].start`: one JGE per boundary, each side either a deeper search or a verdict.
/// `verdicts`: the labels of allow, deny and ENOSYS.
fn search(e: &mut Emitter, line: &[Stretch], verdicts: [Label; 3]) {
    let [allow, deny, enosys] = verdicts;
    let verdict = |s: &Stretch| match s.verdict {
        Verdict::Allow => allow,
        Verdict::Deny => deny,
        Verdict::Unknown => enosys,
    };
    if let [only] = line {
        e.goto(verdict(only));
        return;
    }
    let (below, above) = line.split_at(line.len() / 2);
    let above_label = e.label();
    let jt = match above {
        [only] => To(verdict(only)),
        _ => To(above_label),
    };
    let jf = match below {
        [only] => To(verdict(only)),
        _ => Next,
    };
    e.jump(JGE, above[0].start, jt, jf);
    if below.len() > 1 {
        search(e, below, verdicts);
    }
    if above.len() > 1 {
        e.bind(above_label);
        search(e, above, verdicts);
    }
}

#[derive(Clone, Copy, Debug)]
struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Target {
    Next,
    To(Label),
}
use Target::{Next, To};

struct Insn {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

/// Instructions with symbolic, forward-only jump targets, resolved by `finish`.
#[derive(Default)]
struct Emitter {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
}

impl Emitter {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// The next instruction is the label's.
    fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    fn push(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push(Insn { code, k, jt, jf });
    }

    fn load(&mut self, offset: u32) {
        self.push(LD_W_ABS, offset, Next, Next);
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.push(code, k, jt, jf);
    }

    fn goto(&mut self, label: Label) {
        self.push(JA, 0, To(label), Next);
    }

    fn ret(&mut self, action: u32) {
        self.push(RET, action, Next, Next);
    }

    /// How far past the instruction at `at` a target is; only forward jumps exist.
    fn offset(&self, at: usize, target: Target) -> Result<usize, SeccompError> {
        let To(label) = target else { return Ok(0) };
        let to = self.labels[label.0]
            .ok_or_else(|| SeccompError::Default(format!("label {} never bound", label.0)))?;
        to.checked_sub(at + 1)
            .ok_or_else(|| SeccompError::Default(format!("backward jump at {at}")))
    }

    /// Resolves the labels. A conditional jump beyond 255 instructions is refused, never
    /// truncated; the layout keeps them short: the three verdicts close the program, right after
    /// the search and the argument checks (~90 instructions in all).
    fn finish(self) -> Result<Vec<sock_filter>, SeccompError> {
        if self.insns.len() > libc::BPF_MAXINSNS as usize {
            return Err(SeccompError::Default(format!(
                "{} instructions, over BPF_MAXINSNS",
                self.insns.len()
            )));
        }
        let short = |at, offset: usize| {
            u8::try_from(offset).map_err(|_| {
                SeccompError::Default(format!("jump of {offset} at {at} does not fit in u8"))
            })
        };
        let mut program = Vec::with_capacity(self.insns.len());
        for (at, insn) in self.insns.iter().enumerate() {
            let jt = self.offset(at, insn.jt)?;
            let jf = self.offset(at, insn.jf)?;
            program.push(if insn.code == JA {
                sock_filter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: jt as u32,
                }
            } else {
                sock_filter {
                    code: insn.code,
                    jt: short(at, jt)?,
                    jf: short(at, jf)?,
                    k: insn.k,
                }
            });
        }
        Ok(program)
    }
}
