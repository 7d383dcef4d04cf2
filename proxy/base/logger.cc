#include "proxy/base/logger.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

#include "proxy/base/json.h"

namespace dp {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<bool> g_json{false};
std::atomic<int> g_fd{2};
std::mutex g_mu;  // guards g_file and reopen
std::string g_file;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "?";
}

int open_file(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 && error) *error = "cannot open log file " + path + ": " + std::strerror(errno);
  return fd;
}

}  // namespace

bool parse_log_level(std::string_view s, LogLevel* out) {
  if (s == "debug") *out = LogLevel::debug;
  else if (s == "info") *out = LogLevel::info;
  else if (s == "warn" || s == "warning") *out = LogLevel::warn;
  else if (s == "error") *out = LogLevel::error;
  else return false;
  return true;
}

bool logger_configure(const LoggerOptions& opts, std::string* error) {
  std::lock_guard<std::mutex> lock(g_mu);
  int fd = 2;
  if (!opts.file.empty()) {
    fd = open_file(opts.file, error);
    if (fd < 0) return false;
  }
  int old = g_fd.exchange(fd);
  if (old > 2) ::close(old);
  g_file = opts.file;
  g_level = static_cast<int>(opts.level);
  g_json = opts.json;
  return true;
}

bool logger_reopen(std::string* error) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_file.empty()) return true;
  int fd = open_file(g_file, error);
  if (fd < 0) return false;
  // Put the new file behind the descriptor number other threads may be
  // writing to right now: closing that number instead could let it be
  // reused (by a log segment) before their write(2).
  const int cur = g_fd.load();
  if (cur > 2) {
    if (::dup3(fd, cur, O_CLOEXEC) < 0) {
      if (error) *error = "cannot reopen log file " + g_file + ": dup3: " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    ::close(fd);
  } else {
    g_fd.store(fd);
  }
  return true;
}

bool logger_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void log_line(LogLevel level, const char* component, const char* fmt, ...) {
  char msg[2048];
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  int n = std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::string big;  // a long message (the start-up line with the whole config)
  if (n >= static_cast<int>(sizeof msg) && n < (1 << 20)) {
    big.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(big.data(), big.size(), fmt, again);
    big.pop_back();
  }
  va_end(again);
  if (n < 0) return;
  std::string_view text = !big.empty() ? std::string_view(big)
                                       : std::string_view(msg, std::min<size_t>(static_cast<size_t>(n), sizeof msg - 1));

  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long>(tv.tv_usec / 1000));
  std::string line;
  line.reserve(text.size() + 96);
  if (g_json.load(std::memory_order_relaxed)) {
    line.append("{\"ts\":\"").append(ts).append("\",\"level\":\"").append(level_name(level));
    line.append("\",\"component\":\"");
    append_json_escaped(&line, component);
    line.append("\",\"msg\":\"");
    append_json_escaped(&line, text);
    line.append("\"}\n");
  } else {
    line.append(ts).append(" ").append(level_name(level)).append(" [").append(component).append("] ");
    line.append(text).append("\n");
  }
  ssize_t ignored = ::write(g_fd.load(std::memory_order_relaxed), line.data(), line.size());
  (void)ignored;
}

}  // namespace dp
