// Process log output (not the durable log in log/).  Levels, text or JSON
// lines, to stderr or a file that SIGHUP reopens.  Loop thread and any other
// thread may call; each line is written with one write(2).
//
//   text: 2026-01-02T03:04:05.678Z info [component] message
//   json: {"ts":"2026-01-02T03:04:05.678Z","level":"info","component":"...","msg":"..."}
#pragma once

#include <string>
#include <string_view>

namespace dp {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

struct LoggerOptions {
  LogLevel level = LogLevel::info;
  bool json = false;
  std::string file;  // empty: stderr
};

// Returns false with a reason when the file cannot be opened.
bool logger_configure(const LoggerOptions& opts, std::string* error);
// SIGHUP: opens the configured file again (after logrotate renamed it) and
// writes there from now on; false with *error (may be null) naming the file.
bool logger_reopen(std::string* error = nullptr);
bool logger_enabled(LogLevel level);
bool parse_log_level(std::string_view s, LogLevel* out);
void log_line(LogLevel level, const char* component, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace dp

#define DP_LOG(level, component, ...)                                  \
  do {                                                                 \
    if (::dp::logger_enabled(level)) ::dp::log_line(level, component, __VA_ARGS__); \
  } while (0)
#define LOG_DEBUG(c, ...) DP_LOG(::dp::LogLevel::debug, c, __VA_ARGS__)
#define LOG_INFO(c, ...) DP_LOG(::dp::LogLevel::info, c, __VA_ARGS__)
#define LOG_WARN(c, ...) DP_LOG(::dp::LogLevel::warn, c, __VA_ARGS__)
#define LOG_ERROR(c, ...) DP_LOG(::dp::LogLevel::error, c, __VA_ARGS__)
