/* libconnectlog: an LD_PRELOAD shim that records where a process connects.
 *
 * Every connect() to an IPv4 or IPv6 address appends one line
 * "<port> <address>\n" to the file named by DP_CONNECT_LOG (read once, at
 * the first call; unset: the shim records nothing), before the real
 * connect runs, so refused and short-lived connections are there too.  It
 * sees the connections of every thread and every library of the process
 * that calls connect through the dynamic linker: Node's libuv and the
 * native cores of clients such as valkey-glide alike
 * (tests/integration/test_cluster_clients.py).
 *
 * The line is one write() on an O_APPEND descriptor, so lines of
 * concurrent threads do not interleave.  The wrapped path allocates
 * nothing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr*, socklen_t);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static connect_fn real_connect;
static int log_fd = -1;

static void init(void) {
  real_connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
  const char* path = getenv("DP_CONNECT_LOG");
  if (path && *path) log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void record(const struct sockaddr* addr, socklen_t len) {
  char text[INET6_ADDRSTRLEN] = "";
  unsigned port;
  if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in* in = (const struct sockaddr_in*)addr;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    port = ntohs(in->sin_port);
  } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)addr;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
  } else {
    return;
  }
  char line[16 + INET6_ADDRSTRLEN];
  int n = snprintf(line, sizeof line, "%u %s\n", port, text);
  if (n > 0) {
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;  /* a lost line shows as a missing port: the test notices */
  }
}

int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  pthread_once(&once, init);
  if (!real_connect) {
    errno = ENOSYS;
    return -1;
  }
  if (log_fd >= 0 && addr) {
    int saved = errno;
    record(addr, len);
    errno = saved;
  }
  return real_connect(fd, addr, len);
}
