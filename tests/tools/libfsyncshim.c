/* libfsyncshim: an LD_PRELOAD shim that slows down, blocks or fails fsync,
 * and fills the disk, for durability tests and benchmarks.
 *
 * Environment (read once, at the first wrapped call):
 *   DP_FSYNC_DELAY_US=N        sleep N microseconds before each real
 *                              fsync/fdatasync.
 *   DP_FSYNC_CONTROL_DIR=DIR   checked at every call (no caching):
 *                                DIR/block  exists: fsync/fdatasync wait
 *                                           (polling every 1 ms) until removed;
 *                                DIR/fail   exists: fsync/fdatasync return -1,
 *                                           errno EIO, without syncing;
 *                                DIR/enospc exists: write, pwrite, writev and
 *                                           pwritev to regular files return -1,
 *                                           errno ENOSPC, writing nothing.
 *   DP_FSYNC_PATH_PREFIX=PATH  apply all of the above only to files whose
 *                              path starts with PATH (e.g. one AOF directory).
 *
 * Wrapped: fsync, fdatasync, write, pwrite, pwrite64, writev, pwritev,
 * pwritev64.  Real functions come from dlsym(RTLD_NEXT).  Thread-safe; the
 * wrapped path allocates nothing (stack buffers only). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);
typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef ssize_t (*pwrite_fn)(int, const void*, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec*, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec*, int, off_t);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static sync_fn real_fsync, real_fdatasync;
static write_fn real_write;
static pwrite_fn real_pwrite, real_pwrite64;
static writev_fn real_writev;
static pwritev_fn real_pwritev, real_pwritev64;

static long delay_us;
static int have_control;
static char block_path[PATH_MAX], fail_path[PATH_MAX], enospc_path[PATH_MAX];
static char prefix[PATH_MAX];
static size_t prefix_len;

/* POSIX's way to turn dlsym's object pointer into a function pointer
 * without an ISO C cast between the two. */
#define RESOLVE(var, name) (*(void**)(&(var)) = dlsym(RTLD_NEXT, (name)))

static void init(void) {
  RESOLVE(real_fsync, "fsync");
  RESOLVE(real_fdatasync, "fdatasync");
  RESOLVE(real_write, "write");
  RESOLVE(real_pwrite, "pwrite");
  RESOLVE(real_pwrite64, "pwrite64");
  RESOLVE(real_writev, "writev");
  RESOLVE(real_pwritev, "pwritev");
  RESOLVE(real_pwritev64, "pwritev64");
  const char* d = getenv("DP_FSYNC_DELAY_US");
  if (d) delay_us = strtol(d, NULL, 10);
  const char* c = getenv("DP_FSYNC_CONTROL_DIR");
  if (c && *c) {
    have_control = 1;
    snprintf(block_path, sizeof block_path, "%s/block", c);
    snprintf(fail_path, sizeof fail_path, "%s/fail", c);
    snprintf(enospc_path, sizeof enospc_path, "%s/enospc", c);
  }
  const char* p = getenv("DP_FSYNC_PATH_PREFIX");
  if (p && *p) {
    /* Compare against resolved fd paths, so resolve the prefix too when it
     * exists already (realpath with a caller buffer does not allocate). */
    char resolved[PATH_MAX];
    const char* use = realpath(p, resolved) ? resolved : p;
    snprintf(prefix, sizeof prefix, "%s", use);
    prefix_len = strlen(prefix);
  }
}

static void ensure_init(void) { pthread_once(&once, init); }

static int exists(const char* path) {
  struct stat st;
  int saved = errno;
  int r = stat(path, &st) == 0;
  errno = saved;
  return r;
}

/* 1 when the shim's rules apply to fd. */
static int targeted(int fd, int regular_only) {
  int saved = errno;
  int ok = 1;
  if (regular_only) {
    struct stat st;
    ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  }
  if (ok && prefix_len > 0) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    ok = n >= (ssize_t)prefix_len && memcmp(path, prefix, prefix_len) == 0;
  }
  errno = saved;
  return ok;
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Returns 0 to go on with the real call, -1 (errno set) to fail it. */
static int before_sync(int fd) {
  ensure_init();
  if (!have_control && delay_us <= 0) return 0;
  if (!targeted(fd, 0)) return 0;
  if (delay_us > 0) sleep_us(delay_us);
  if (have_control) {
    while (exists(block_path)) sleep_us(1000);
    if (exists(fail_path)) {
      errno = EIO;
      return -1;
    }
  }
  return 0;
}

static int before_write(int fd) {
  ensure_init();
  if (!have_control) return 0;
  if (!exists(enospc_path) || !targeted(fd, 1)) return 0;
  errno = ENOSPC;
  return -1;
}

int fsync(int fd) { return before_sync(fd) ? -1 : real_fsync(fd); }
int fdatasync(int fd) { return before_sync(fd) ? -1 : real_fdatasync(fd); }

ssize_t write(int fd, const void* buf, size_t n) {
  return before_write(fd) ? -1 : real_write(fd, buf, n);
}
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  return before_write(fd) ? -1 : real_pwrite(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  return before_write(fd) ? -1 : real_pwrite64(fd, buf, n, off);
}
ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  return before_write(fd) ? -1 : real_writev(fd, iov, cnt);
}
ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  return before_write(fd) ? -1 : real_pwritev(fd, iov, cnt, off);
}
ssize_t pwritev64(int fd, const struct iovec* iov, int cnt, off_t off) {
  return before_write(fd) ? -1 : real_pwritev64(fd, iov, cnt, off);
}
