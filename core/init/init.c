/*
 * lonely-init: PID 1 of a container made with `init: true` (or created without a command),
 * as docker --init's tini: it runs the command as its child, forwards every signal it gets to
 * it, reaps every zombie of the container, and exits with the command's status (128+n for
 * signal n). Without a command it only reaps, and ends on SIGTERM, SIGINT or SIGHUP.
 *
 * Freestanding (no libc): lonely embeds it and execs it from a sealed memfd, so it runs in any
 * root filesystem and the container can neither see nor overwrite a binary of the host's.
 */
typedef unsigned long u64;
typedef long i64;

#if defined(__x86_64__)
enum { SYS_write = 1, SYS_close = 3, SYS_rt_sigprocmask = 14, SYS_execve = 59, SYS_exit = 60, SYS_wait4 = 61, SYS_kill = 62,
       SYS_rt_sigtimedwait = 128, SYS_prctl = 157, SYS_exit_group = 231, SYS_clone = 56 };
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d) {
  i64 ret;
  register i64 r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
enum { SYS_write = 64, SYS_close = 57, SYS_rt_sigprocmask = 135, SYS_execve = 221, SYS_exit = 93, SYS_wait4 = 260, SYS_kill = 129,
       SYS_rt_sigtimedwait = 137, SYS_prctl = 167, SYS_exit_group = 94, SYS_clone = 220 };
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d) {
  register i64 x8 __asm__("x8") = n;
  register i64 x0 __asm__("x0") = a;
  register i64 x1 __asm__("x1") = b;
  register i64 x2 __asm__("x2") = c;
  register i64 x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
#else
#error "lonely-init knows x86_64 and aarch64"
#endif

#define SIGCHLD 17
#define SIGHUP 1
#define SIGINT 2
#define SIGTERM 15
#define WNOHANG 1
#define ENOENT 2
#define EINTR 4
#define ECHILD 10
#define EAGAIN 11

static u64 strlen_(const char *s) { u64 n = 0; while (s[n]) n++; return n; }

/* --status FD: where the command's exit status goes (a detached container's state file). */
static int status_fd = -1;

/* Writes "<status>\n" to the status fd, if any, then exits with it. */
static __attribute__((noreturn)) void finish(int status);
static void say(const char *s) { sys6(SYS_write, 2, (i64)s, (i64)strlen_(s), 0); }
static __attribute__((noreturn)) void leave(int code) { for (;;) sys6(SYS_exit_group, code, 0, 0, 0); }
static int same(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }
static int has_slash(const char *s) { for (; *s; s++) if (*s == '/') return 1; return 0; }

/* execve the command, searching PATH (from envp) when it has no slash, as execvp. */
static __attribute__((noreturn)) void run(char **argv, char **envp) {
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char **e = envp; *e; e++) {
    const char *v = *e;
    if (v[0] == 'P' && v[1] == 'A' && v[2] == 'T' && v[3] == 'H' && v[4] == '=') path = v + 5;
  }
  i64 err = -ENOENT;
  if (has_slash(argv[0])) {
    err = sys6(SYS_execve, (i64)argv[0], (i64)argv, (i64)envp, 0);
  } else {
    char buf[4096];
    u64 cmd = strlen_(argv[0]);
    for (const char *p = path;;) {
      const char *end = p;
      while (*end && *end != ':') end++;
      u64 dir = (u64)(end - p), n = 0;
      if (dir == 0) buf[n++] = '.';
      for (u64 i = 0; i < dir && n < sizeof buf - 2; i++) buf[n++] = p[i];
      buf[n++] = '/';
      if (n + cmd < sizeof buf) {
        for (u64 i = 0; i <= cmd; i++) buf[n + i] = argv[0][i];
        i64 r = sys6(SYS_execve, (i64)buf, (i64)argv, (i64)envp, 0);
        if (r != -ENOENT || err == -ENOENT) err = r;
      }
      if (!*end) break;
      p = end + 1;
    }
  }
  say("lonely-init: exec `");
  say(argv[0]);
  say(err == -ENOENT ? "`: No such file or directory\n" : "`: cannot execute\n");
  leave(err == -ENOENT ? 127 : 126);
}

static int status_of(int ws) {
  int sig = ws & 0x7f;
  return sig ? 128 + sig : (ws >> 8) & 0xff;
}

static __attribute__((noreturn)) void finish(int status) {
  if (status_fd >= 0) {
    char buf[8];
    int n = 0;
    if (status >= 100) buf[n++] = (char)('0' + status / 100);
    if (status >= 10) buf[n++] = (char)('0' + status / 10 % 10);
    buf[n++] = (char)('0' + status % 10);
    buf[n++] = '\n';
    sys6(SYS_write, status_fd, (i64)buf, n, 0);
  }
  leave(status);
}

int init_main(char **argv, char **envp) {
  u64 all = ~0UL, none = 0;
  /* Every signal is taken with sigtimedwait: none interrupts, none is lost. */
  sys6(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, (i64)&all, 0, 8);
  /* Not dumpable: no process of the container may read this one's fds through /proc. */
  sys6(SYS_prctl, 4 /* PR_SET_DUMPABLE */, 0, 0, 0);
  if (argv[1] && same(argv[1], "--status") && argv[2]) {
    status_fd = 0;
    for (const char *d = argv[2]; *d >= '0' && *d <= '9'; d++) status_fd = status_fd * 10 + (*d - '0');
    argv += 2;
  }
  char **command = argv[1] ? argv + 1 : 0;
  if (command && command[0][0] == '-' && command[0][1] == '-' && !command[0][2]) command = command[1] ? command + 1 : 0;
  i64 child = 0;
  if (command) {
    child = sys6(SYS_clone, SIGCHLD, 0, 0, 0);
    if (child < 0) { say("lonely-init: clone failed\n"); leave(125); }
    if (child == 0) {
      if (status_fd >= 0) sys6(SYS_close, status_fd, 0, 0, 0); /* the command never holds it */
      sys6(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, (i64)&none, 0, 8);
      run(command, envp);
    }
  }
  for (;;) {
    struct { int signo, errno_, code, pad[29]; } info;
    i64 sig = sys6(SYS_rt_sigtimedwait, (i64)&all, (i64)&info, 0, 8);
    if (sig < 0) continue; /* EINTR, EAGAIN */
    if (sig == SIGCHLD) {
      for (;;) {
        int ws = 0;
        i64 pid = sys6(SYS_wait4, -1, (i64)&ws, WNOHANG, 0);
        if (pid <= 0) break;
        if (pid == child) finish(status_of(ws));
      }
    } else if (child > 0) {
      sys6(SYS_kill, child, sig, 0, 0);
    } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      finish(128 + (int)sig);
    }
  }
}

/* The kernel's entry: the stack holds argc, argv[], NULL, envp[]. */
#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n call start_c\n hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n mov x29, #0\n mov x0, sp\n and sp, x0, #-16\n bl start_c\n brk #0\n");
#endif

__attribute__((noreturn, used)) void start_c(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  leave(init_main(argv, envp));
}
