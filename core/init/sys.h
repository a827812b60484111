/*
 * The little of the kernel's interface that lonely's freestanding programs (init.c, monitor.c)
 * use: raw system calls for x86_64 and aarch64, and the entry point. No libc: they are exec'd
 * from sealed memfds into any root filesystem.
 */
typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#if defined(__x86_64__)
enum { SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_rt_sigaction = 13, SYS_rt_sigprocmask = 14, SYS_ioctl = 16,
       SYS_getpid = 39, SYS_recvmsg = 47, SYS_clone = 56, SYS_execve = 59, SYS_exit = 60, SYS_wait4 = 61, SYS_kill = 62,
       SYS_fcntl = 72, SYS_rt_sigtimedwait = 128, SYS_prctl = 157, SYS_exit_group = 231, SYS_ppoll = 271,
       SYS_accept4 = 288, SYS_pidfd_open = 434, SYS_shutdown = 48 };
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e) {
  i64 ret;
  register i64 r10 __asm__("r10") = d;
  register i64 r8 __asm__("r8") = e;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
enum { SYS_read = 63, SYS_write = 64, SYS_close = 57, SYS_rt_sigaction = 134, SYS_rt_sigprocmask = 135, SYS_ioctl = 29,
       SYS_getpid = 172, SYS_recvmsg = 212, SYS_clone = 220, SYS_execve = 221, SYS_exit = 93, SYS_wait4 = 260, SYS_kill = 129,
       SYS_fcntl = 25, SYS_rt_sigtimedwait = 137, SYS_prctl = 167, SYS_exit_group = 94, SYS_ppoll = 73,
       SYS_accept4 = 242, SYS_pidfd_open = 434, SYS_shutdown = 210 };
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e) {
  register i64 x8 __asm__("x8") = n;
  register i64 x0 __asm__("x0") = a;
  register i64 x1 __asm__("x1") = b;
  register i64 x2 __asm__("x2") = c;
  register i64 x3 __asm__("x3") = d;
  register i64 x4 __asm__("x4") = e;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  return x0;
}
#else
#error "lonely's freestanding programs know x86_64 and aarch64"
#endif

#define sys4(n, a, b, c, d) sys6(n, (i64)(a), (i64)(b), (i64)(c), (i64)(d), 0)

#define SIGHUP 1
#define SIGINT 2
#define SIGKILL 9
#define SIGTERM 15
#define SIGCHLD 17
#define ENOENT 2
#define EINTR 4
#define EAGAIN 11

static __attribute__((unused)) u64 strlen_(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static __attribute__((unused)) int same(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }
static __attribute__((noreturn)) void leave(int code) { for (;;) sys4(SYS_exit_group, code, 0, 0, 0); }

int program_main(char **argv, char **envp);

/* The compiler may call these for struct copies and zeroing even when freestanding. */
void *memset(void *d, int c, u64 n) { volatile u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, u64 n) { volatile u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }

/* The kernel's entry: the stack holds argc, argv[], NULL, envp[]. */
#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n call start_c\n hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n mov x29, #0\n mov x0, sp\n and sp, x0, #-16\n bl start_c\n brk #0\n");
#endif

__attribute__((noreturn, used)) void start_c(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  leave(program_main(argv, argv + argc + 1));
}
