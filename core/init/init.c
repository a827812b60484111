/*
 * lonely-init: PID 1 of a container made with `init: true` (or created without a command),
 * as docker --init's tini: it runs the command as its child, forwards every signal it gets to
 * it, reaps every zombie of the container, and exits with the command's status (128+n for
 * signal n). Without a command it only reaps, and ends on SIGTERM, SIGINT or SIGHUP.
 *
 * `--hold FD [--exec]` first: a created container's PID 1 (`lonely create`, then `start`) waits
 * with every setup step done until one byte arrives on FD (from its monitor), then goes on; with
 * `--exec` it then becomes the command itself instead of its init. EOF first: it never started.
 *
 * Freestanding (no libc): lonely embeds it and execs it from a sealed memfd, so it runs in any
 * root filesystem and the container can neither see nor overwrite a binary of the host's.
 */
#include "sys.h"

#define WNOHANG 1
#define ECHILD 10

static void say(const char *s) { sys4(SYS_write, 2, (i64)s, (i64)strlen_(s), 0); }
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
    err = sys4(SYS_execve, (i64)argv[0], (i64)argv, (i64)envp, 0);
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
        i64 r = sys4(SYS_execve, (i64)buf, (i64)argv, (i64)envp, 0);
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

int program_main(char **argv, char **envp) {
  u64 all = ~0UL, none = 0;
  /* Every signal is taken with sigtimedwait: none interrupts, none is lost. */
  sys4(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, (i64)&all, 0, 8);
  /* Not dumpable: no process of the container may read this one's fds through /proc. */
  sys4(SYS_prctl, 4 /* PR_SET_DUMPABLE */, 0, 0, 0);
  sys4(SYS_prctl, 15 /* PR_SET_NAME */, "lonely-init", 0, 0); /* not the memfd's fd number */
  int hold = -1, become = 0;
  if (argv[1] && same(argv[1], "--hold") && argv[2]) {
    hold = 0;
    for (const char *d = argv[2]; *d >= '0' && *d <= '9'; d++) hold = hold * 10 + (*d - '0');
    argv += 2;
    if (argv[1] && same(argv[1], "--exec")) become = 1, argv++;
  }
  char **command = argv[1] ? argv + 1 : 0;
  if (command && command[0][0] == '-' && command[0][1] == '-' && !command[0][2]) command = command[1] ? command + 1 : 0;
  if (hold >= 0) {
    char go;
    i64 n;
    do n = sys4(SYS_read, hold, (i64)&go, 1, 0); while (n == -EINTR);
    sys4(SYS_close, hold, 0, 0, 0); /* the command never holds it */
    if (n != 1) leave(125);
    if (become && command) {
      sys4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, (i64)&none, 0, 8);
      run(command, envp);
    }
  }
  i64 child = 0;
  if (command) {
    child = sys4(SYS_clone, SIGCHLD, 0, 0, 0);
    if (child < 0) { say("lonely-init: clone failed\n"); leave(125); }
    if (child == 0) {
      sys4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, (i64)&none, 0, 8);
      run(command, envp);
    }
  }
  for (;;) {
    struct { int signo, errno_, code, pad[29]; } info;
    i64 sig = sys4(SYS_rt_sigtimedwait, (i64)&all, (i64)&info, 0, 8);
    if (sig < 0) continue; /* EINTR, EAGAIN */
    if (sig == SIGCHLD) {
      for (;;) {
        int ws = 0;
        i64 pid = sys4(SYS_wait4, -1, (i64)&ws, WNOHANG, 0);
        if (pid <= 0) break;
        if (pid == child) leave(status_of(ws));
      }
    } else if (child > 0) {
      sys4(SYS_kill, child, sig, 0, 0);
    } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      leave(128 + (int)sig);
    }
  }
}
