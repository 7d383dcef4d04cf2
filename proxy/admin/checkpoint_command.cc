#include "proxy/admin/checkpoint_command.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace dp {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Connects to host:port (any address family getaddrinfo offers); "" + fd, or
// the cause.
std::string connect_to(const config::HostPort& hp, int timeout_ms, Fd* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(hp.port);
  if (int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res)
    return std::string("cannot resolve: ") + gai_strerror(rc);
  std::string error = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd fd;
    fd.fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd.fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // also bounds connect()
    setsockopt(fd.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd.fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      error = std::string("connect: ") + std::strerror(errno);
      continue;
    }
    out->fd = fd.fd;
    fd.fd = -1;
    error.clear();
    break;
  }
  freeaddrinfo(res);
  return error;
}

// Reads one HTTP response (headers, then Content-Length bytes or until EOF).
std::string read_response(int fd, int* status, std::string* body) {
  std::string in;
  size_t head_end = std::string::npos, want = std::string::npos;
  char buf[4096];
  for (;;) {
    if (head_end != std::string::npos && want != std::string::npos && in.size() >= head_end + want) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::string("reading the answer: ") +
             (errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : std::strerror(errno));
    }
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > (1u << 20)) return "answer larger than 1 MiB";
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      head_end += 4;
      std::string lower = in.substr(0, head_end);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (size_t p = lower.find("\r\ncontent-length:"); p != std::string::npos)
        want = std::strtoull(lower.c_str() + p + 17, nullptr, 10);
    }
  }
  if (head_end == std::string::npos) return "connection closed before a complete HTTP answer";
  if (in.compare(0, 5, "HTTP/") != 0 || in.find(' ') == std::string::npos)
    return "not an HTTP answer: '" + in.substr(0, std::min<size_t>(in.find('\r'), 80)) + "'";
  *status = std::atoi(in.c_str() + in.find(' ') + 1);
  *body = in.substr(head_end, want == std::string::npos ? std::string::npos : want);
  while (!body->empty() && (body->back() == '\n' || body->back() == '\r')) body->pop_back();
  return "";
}

}  // namespace

int request_checkpoint(const config::Config& cfg, std::string* output, int timeout_ms) {
  const std::string where = "admin " + cfg.admin.str();
  if (!cfg.admin_enabled) {
    *output = "admin.enabled is false in the configuration: the proxy has no admin port to ask "
              "(give --admin HOST:PORT of the running proxy)";
    return kCheckpointNoAnswer;
  }
  Fd fd;
  if (std::string err = connect_to(cfg.admin, timeout_ms, &fd); !err.empty()) {
    *output = where + ": " + err + " (is the proxy running with this admin.address?)";
    return kCheckpointNoAnswer;
  }
  std::string host = cfg.admin.str();
  std::string req = "POST /checkpoint HTTP/1.1\r\nHost: " + host +
                    "\r\nContent-Length: 0\r\nConnection: close\r\n";
  if (!cfg.admin_token.empty()) req += "Authorization: Bearer " + cfg.admin_token + "\r\n";
  req += "\r\n";
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = ::send(fd.fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *output = where + ": sending the request: " + std::strerror(errno);
      return kCheckpointNoAnswer;
    }
    sent += static_cast<size_t>(n);
  }
  int status = 0;
  std::string body;
  if (std::string err = read_response(fd.fd, &status, &body); !err.empty()) {
    *output = where + ": " + err;
    return kCheckpointNoAnswer;
  }
  *output = where + " answered " + std::to_string(status) + ": " + body;
  return status == 202 ? kCheckpointStarted : kCheckpointRefused;
}

}  // namespace dp
