/*
 * lonely-monitor: the parent of a detached container's PID 1, as conmon or containerd's shim.
 * It outlives the Node process that started the container and holds what must outlive it: the
 * container's stdio (pipes or the pty master), the log it copies them to, the attach socket
 * through which later processes see the output live and type into stdin, and the exit status,
 * which only a parent can collect (also after SIGKILL). When PID 1 has ended and its output is
 * drained, it writes the status file and ends the way PID 1 did, so that its own parent reads
 * the container's exit from it. Freestanding and small: a few pages of RSS per container.
 *
 * argv: lonely-monitor PID tty|pipes held|running. Fds: 3 status file, 4 log, 5 attach socket (listening),
 * 6 the creator's sync socket (it may send the pty master, then closes), 7 the container's stdin
 * (if open), 8 stdout (or nothing with a tty), 9 stderr, 10 a created PID 1's hold pipe (one
 * byte starts it: lonely-init --hold), 11 the flock of its writable layer (held, never used: it
 * ends with us, when the layer is no one's any more).
 *
 * Attach frames, both ways: type (1 byte), length (4 bytes, little-endian), payload.
 * To the monitor: 0 stdin data, 1 window size (rows, cols: 2 bytes each), 2 close stdin, 3 start.
 * From it: 1 stdout, 2 stderr, 3 exit (the status file's text), 4 started.
 */
#include "sys.h"

#define STATUS 3
#define LOG 4
#define LISTEN 5
#define SYNC 6
#define STDIN 7
#define STDOUT 8
#define STDERR 9
#define HOLD 10
#define MAX_CLIENTS 16
#define FRAME_MAX 65536
#define POLLIN 1
#define POLLOUT 4
#define POLLHUP 16
#define F_SETFL 4
#define O_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
#define SOCK_NONBLOCK 04000
#define MSG_CMSG_CLOEXEC 0x40000000
#define TIOCSWINSZ 0x5414
#define PR_SET_DUMPABLE 4
#define EIO 5

struct pollfd { int fd; short events, revents; };
struct timespec { i64 sec, nsec; };
struct iovec { void *base; u64 len; };
struct msghdr { void *name; u32 namelen; struct iovec *iov; u64 iovlen; void *control; u64 controllen; int flags; };
struct sigaction_k { void *handler; u64 flags; void *restorer; u64 mask; };
struct rusage { struct { i64 sec, usec; } utime, stime; i64 rest[14]; };

struct client { int fd; u32 have; u8 buf[5 + 64]; /* a frame header, a small payload (window size) */ u32 skip; };

static struct client clients[MAX_CLIENTS];
static int out_fd[2] = {-1, -1}; /* stdout, stderr (or the pty master in [0]) */
static int stdin_fd = -1;
static int hold_fd = -1; /* HOLD while a created PID 1 waits for its start */
static int tty;
static u8 io[FRAME_MAX];

static void close_fd(int *fd) { if (*fd >= 0) sys4(SYS_close, *fd, 0, 0, 0); *fd = -1; }

/* write(2) until all is written; a full log disk loses the rest, never blocks the container. */
static int write_all(int fd, const u8 *p, u64 n) {
  while (n) {
    i64 w = sys4(SYS_write, fd, p, n, 0);
    if (w == -EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (u64)w;
  }
  return 0;
}

static void drop_client(int i) { close_fd(&clients[i].fd); }

/* A client that cannot take a frame now is dropped: a stalled reader never stalls the container. */
static void send_frame(int i, u8 type, const u8 *p, u32 n) {
  u8 head[5] = {type, (u8)n, (u8)(n >> 8), (u8)(n >> 16), (u8)(n >> 24)};
  if (write_all(clients[i].fd, head, 5) || write_all(clients[i].fd, p, n)) drop_client(i);
}

static void broadcast(u8 type, const u8 *p, u32 n) {
  for (int i = 0; i < MAX_CLIENTS; i++) if (clients[i].fd >= 0) send_frame(i, type, p, n);
}

/* Copies what stream k has now (up to 1 MiB: the other fds get their turn) to the log and the
   attached; closes it at EOF (EIO: a pty's). */
static void pump(int k) {
  for (int rounds = 0; rounds < 16; rounds++) {
    i64 n = sys4(SYS_read, out_fd[k], io, sizeof io, 0);
    if (n == -EINTR) continue;
    if (n == -EAGAIN) return;
    if (n <= 0) { close_fd(&out_fd[k]); return; }
    write_all(LOG, io, (u64)n);
    broadcast((u8)(k + 1), io, (u32)n);
  }
}

static void accept_client(void) {
  i64 fd = sys4(SYS_accept4, LISTEN, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  for (int i = 0; i < MAX_CLIENTS; i++) if (clients[i].fd < 0) { clients[i].fd = (int)fd; clients[i].have = 0; clients[i].skip = 0; return; }
  sys4(SYS_close, fd, 0, 0, 0); /* full */
}

/* One read from client i; acts on each complete frame (stdin data is passed on as it arrives). */
static void from_client(int i) {
  struct client *c = &clients[i];
  i64 n = sys4(SYS_read, c->fd, io, sizeof io, 0);
  if (n == -EINTR || n == -EAGAIN) return;
  if (n <= 0) { drop_client(i); return; }
  for (i64 at = 0; at < n;) {
    if (c->skip) { /* inside a stdin frame's payload */
      u32 take = (u32)(n - at) < c->skip ? (u32)(n - at) : c->skip;
      int in = tty ? out_fd[0] : stdin_fd;
      if (in >= 0) write_all(in, io + at, take);
      c->skip -= take, at += take;
      continue;
    }
    c->buf[c->have++] = io[at++];
    if (c->have < 5) continue;
    u32 len = c->buf[1] | (u32)c->buf[2] << 8 | (u32)c->buf[3] << 16 | (u32)c->buf[4] << 24;
    if (c->buf[0] == 0) { c->have = 0; c->skip = len; continue; }
    if (len > sizeof c->buf - 5) { drop_client(i); return; }
    if (c->have < 5 + len) continue;
    if (c->buf[0] == 1 && len == 4 && tty && out_fd[0] >= 0) {
      u16 size[4] = {(u16)(c->buf[5] | c->buf[6] << 8), (u16)(c->buf[7] | c->buf[8] << 8), 0, 0};
      sys4(SYS_ioctl, out_fd[0], TIOCSWINSZ, size, 0);
    } else if (c->buf[0] == 2 && !tty) {
      close_fd(&stdin_fd);
    } else if (c->buf[0] == 3) {
      if (hold_fd >= 0) write_all(hold_fd, (const u8 *)"s", 1);
      close_fd(&hold_fd);
      send_frame(i, 4, 0, 0);
      if (clients[i].fd < 0) return;
    }
    c->have = 0;
  }
}

/* After the exit frame: each client reads to our EOF and closes; until then (1 s at most) what
   it still sends is read and dropped, so a last write of its (stdin's end) meets no closed
   socket, whose EPIPE would make it discard the frames it has not read yet. */
static void linger(void) {
  for (int i = 0; i < MAX_CLIENTS; i++) if (clients[i].fd >= 0) sys4(SYS_shutdown, clients[i].fd, 1 /* SHUT_WR */, 0, 0);
  for (int rounds = 0; rounds < 100; rounds++) {
    struct pollfd p[MAX_CLIENTS];
    int open = 0;
    for (int i = 0; i < MAX_CLIENTS; i++) {
      p[i] = (struct pollfd){clients[i].fd, POLLIN, 0};
      open += clients[i].fd >= 0;
    }
    if (!open) return;
    struct timespec wait = {0, 10 * 1000 * 1000};
    sys6(SYS_ppoll, (i64)p, MAX_CLIENTS, (i64)&wait, 0, 8);
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].fd < 0 || !p[i].revents) continue;
      i64 n = sys4(SYS_read, clients[i].fd, io, sizeof io, 0);
      if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR)) drop_client(i);
    }
  }
}

static int put_num(u8 *p, u64 v) {
  u8 tmp[24];
  int n = 0, k = 0;
  do tmp[n++] = (u8)('0' + v % 10), v /= 10; while (v);
  while (n) p[k++] = tmp[--n];
  return k;
}

static int put_str(u8 *p, const char *s) { int k = 0; while (s[k]) p[k] = (u8)s[k], k++; return k; }

int program_main(char **argv, char **envp) {
  (void)envp;
  u64 all = ~0UL;
  sys4(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, &all, 0, 8); /* no signal ends us before PID 1 */
  sys4(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0); /* our fds are no handle to anyone of our uid */
  sys4(SYS_prctl, 15 /* PR_SET_NAME */, "lonely-monitor", 0, 0); /* not the memfd's fd number */
  if (!argv[1] || !argv[2] || !argv[3]) return 125;
  i64 pid = 0;
  for (const char *d = argv[1]; *d >= '0' && *d <= '9'; d++) pid = pid * 10 + (*d - '0');
  tty = same(argv[2], "tty");
  if (same(argv[3], "held")) hold_fd = HOLD;
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;

  /* The creator's sync: with a tty, the master arrives here; EOF once it has recorded PID 1 (we
     reap nothing before, so the pid it looks up cannot have been reused). */
  for (;;) {
    u8 byte;
    u64 control[4] = {0};
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {0, 0, &iov, 1, control, sizeof control, 0};
    i64 n = sys4(SYS_recvmsg, SYNC, &msg, MSG_CMSG_CLOEXEC, 0);
    if (n == -EINTR) continue;
    if (n <= 0) break;
    /* struct cmsghdr: len (8 bytes), level (4), type (4), then the fd. SOL_SOCKET 1, SCM_RIGHTS 1. */
    if (msg.controllen >= 20 && ((u32 *)control)[2] == 1 && ((u32 *)control)[3] == 1) out_fd[0] = ((int *)control)[4];
  }
  sys4(SYS_close, SYNC, 0, 0, 0);
  if (!tty) out_fd[0] = STDOUT, out_fd[1] = STDERR, stdin_fd = STDIN;
  /* Non-blocking, all: a container that does not read its stdin never stalls its output. */
  for (int k = 0; k < 2; k++) if (out_fd[k] >= 0) sys4(SYS_fcntl, out_fd[k], F_SETFL, O_NONBLOCK, 0);
  if (stdin_fd >= 0) sys4(SYS_fcntl, stdin_fd, F_SETFL, O_NONBLOCK, 0);
  i64 pidfd = sys4(SYS_pidfd_open, pid, 0, 0, 0);
  if (pidfd < 0) return 125; /* Linux before 5.3: lonely needs pidfds everywhere */

  int ws = 0;
  struct rusage ru = {0};
  for (;;) {
    struct pollfd p[4 + MAX_CLIENTS];
    int n = 0;
    p[n++] = (struct pollfd){(int)pidfd, POLLIN, 0};
    p[n++] = (struct pollfd){LISTEN, POLLIN, 0};
    for (int k = 0; k < 2; k++) p[n++] = (struct pollfd){out_fd[k], POLLIN, 0}; /* -1: ignored */
    for (int i = 0; i < MAX_CLIENTS; i++) p[n++] = (struct pollfd){clients[i].fd, POLLIN, 0};
    i64 r = sys6(SYS_ppoll, (i64)p, n, 0, 0, 8);
    if (r < 0 && r != -EINTR) break;
    if (p[1].revents) accept_client();
    for (int k = 0; k < 2; k++) if (p[2 + k].revents) pump(k);
    for (int i = 0; i < MAX_CLIENTS; i++) if (p[4 + i].revents && clients[i].fd >= 0) from_client(i);
    if (p[0].revents && sys4(SYS_wait4, pid, &ws, 0, &ru) == pid) break;
  }
  /* PID 1 is gone, and with it its PID namespace: what is left in the pipes is its last output. */
  for (int rounds = 0; rounds < 200 && (out_fd[0] >= 0 || out_fd[1] >= 0); rounds++) {
    struct pollfd p[2] = {{out_fd[0], POLLIN, 0}, {out_fd[1], POLLIN, 0}};
    struct timespec wait = {0, 10 * 1000 * 1000};
    if (sys6(SYS_ppoll, (i64)p, 2, (i64)&wait, 0, 8) == 0 && tty) break; /* a pty whose reader left: nothing more */
    for (int k = 0; k < 2; k++) if (out_fd[k] >= 0 && p[k].revents) pump(k);
  }
  int sig = ws & 0x7f, code = (ws >> 8) & 0xff;
  u8 text[160];
  int t = 0;
  t += put_str(text + t, sig ? "signal=" : "exitCode=");
  t += put_num(text + t, (u64)(sig ? sig : code));
  t += put_str(text + t, "\nuserUs=");
  t += put_num(text + t, (u64)(ru.utime.sec * 1000000 + ru.utime.usec));
  t += put_str(text + t, "\nsystemUs=");
  t += put_num(text + t, (u64)(ru.stime.sec * 1000000 + ru.stime.usec));
  text[t++] = '\n';
  write_all(STATUS, text, (u64)t);
  broadcast(3, text, (u32)t);
  linger();
  if (sig) {
    /* End as PID 1 did, so that our parent reads its signal: default action, unblocked. */
    struct sigaction_k dfl = {0, 0, 0, 0};
    u64 one = 1UL << (sig - 1);
    sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
    sys4(SYS_kill, sys4(SYS_getpid, 0, 0, 0, 0), sig, 0, 0);
    sys4(SYS_rt_sigprocmask, 1 /* SIG_UNBLOCK */, &one, 0, 8);
    return 128 + sig; /* a signal whose default is to ignore it */
  }
  return code;
}
