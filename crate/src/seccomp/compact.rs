//! The default profile as ONE classic-BPF program from our own emitter: the arch and x32
//! checks, the syscalls whose arguments matter, then a balanced binary search over the runs of
//! allowed syscall numbers.

use libc::sock_filter;

use super::{
    syscall_number, SeccompError, AF_ALG, AF_VSOCK, ALLOWED, NAMESPACE_FLAGS, PERSONALITIES,
    TIOCLINUX, TIOCSTI,
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
        })
    }

    fn contains(&self, nr: u32) -> bool {
        [
            self.clone,
            self.unshare,
            self.clone3,
            self.socket,
            self.personality,
            self.ioctl,
        ]
        .contains(&nr)
    }
}

/// The default profile's program, from the policy tables in `mod.rs`.
pub(super) fn default_program() -> Result<Vec<sock_filter>, SeccompError> {
    let conditional = Conditional::resolve()?;
    emit(&conditional, &plain_syscalls(&conditional))
}

/// The allowed syscalls whose arguments do not matter: ALLOWED, but for the conditional ones.
pub(super) fn plain_syscalls(conditional: &Conditional) -> Vec<u32> {
    ALLOWED
        .iter()
        .filter_map(|name| syscall_number(name))
        .filter(|nr| !conditional.contains(*nr))
        .collect()
}

/// Our own emitter because libseccomp cannot emit range checks (one JEQ per syscall), and the
/// kernel's cost to load a filter (convert + JIT) is linear in its length.
pub(super) fn emit(
    conditional: &Conditional,
    plain: &[u32],
) -> Result<Vec<sock_filter>, SeccompError> {
    let mut e = Emitter::default();
    let [allow, deny, enosys] = [e.label(), e.label(), e.label()];
    let [clone_flags, socket_family, persona, ioctl_request] =
        [e.label(), e.label(), e.label(), e.label()];

    // Only the native ABI: i386 and x32 entry points answer like a denied call.
    e.load(ARCH);
    e.jump(JEQ, AUDIT_ARCH_NATIVE, Next, To(deny));
    e.load(NR);
    if cfg!(target_arch = "x86_64") {
        e.jump(JGE, X32_SYSCALL_BIT, To(deny), Next);
    }
    // clone3 hides its flags in memory, so it answers ENOSYS and libc falls back to clone.
    let c = conditional;
    for (nr, block) in [
        (c.clone, clone_flags),
        (c.unshare, clone_flags),
        (c.clone3, enosys),
        (c.socket, socket_family),
        (c.personality, persona),
        (c.ioctl, ioctl_request),
    ] {
        e.jump(JEQ, nr, To(block), Next);
    }
    search(&mut e, &stretches(&runs(plain)), allow, deny);

    e.bind(clone_flags);
    without_namespace_flags(&mut e, allow, deny);
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

/// From `start` up to the next stretch's start, every number is `allowed` or not.
#[derive(Clone, Copy, Debug)]
struct Stretch {
    start: u32,
    allowed: bool,
}

/// The whole u32 line cut into alternating denied and allowed stretches, the first at 0.
fn stretches(runs: &[(u32, u32)]) -> Vec<Stretch> {
    let mut line = vec![Stretch {
        start: 0,
        allowed: false,
    }];
    for &(lo, hi) in runs {
        if lo == 0 {
            line[0].allowed = true;
        } else {
            line.push(Stretch {
                start: lo,
                allowed: true,
            });
        }
        if let Some(after) = hi.checked_add(1) {
            line.push(Stretch {
                start: after,
                allowed: false,
            });
        }
    }
    line
}

/// A balanced binary search over the stretches, the accumulator holding `nr` and known to be at
/// least `line[0].start`: one JGE per boundary, each side either a deeper search or a verdict.
fn search(e: &mut Emitter, line: &[Stretch], allow: Label, deny: Label) {
    let verdict = |s: &Stretch| if s.allowed { allow } else { deny };
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
        search(e, below, allow, deny);
    }
    if above.len() > 1 {
        e.bind(above_label);
        search(e, above, allow, deny);
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
