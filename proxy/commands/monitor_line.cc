#include "proxy/commands/monitor_line.h"

#include <string>
#include <vector>

namespace dp::commands {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads one quoted token starting at line[*pos] == '"'; false when malformed.
bool read_quoted(std::string_view line, size_t* pos, std::string* out) {
  size_t i = *pos;
  if (i >= line.size() || line[i] != '"') return false;
  ++i;
  out->clear();
  while (i < line.size()) {
    char c = line[i];
    if (c == '"') {
      *pos = i + 1;
      return true;
    }
    if (c != '\\') {
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= line.size()) return false;
    char e = line[i + 1];
    if (e == 'x' && i + 3 < line.size() && hex_digit(line[i + 2]) >= 0 && hex_digit(line[i + 3]) >= 0) {
      out->push_back(static_cast<char>(hex_digit(line[i + 2]) * 16 + hex_digit(line[i + 3])));
      i += 4;
      continue;
    }
    switch (e) {
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'a': out->push_back('\a'); break;
      case 'b': out->push_back('\b'); break;
      default: out->push_back(e); break;
    }
    i += 2;
  }
  return false;
}

constexpr size_t kMaxTokens = 4096;  // longer lines are held without classifying

}  // namespace

bool monitor_line_needs_hold(const CommandTable& table, std::string_view frame) {
  size_t end = frame.find("\r\n");
  std::string_view line = frame.substr(0, end);
  size_t close = line.find("] \"");
  if (close == std::string_view::npos) return true;
  size_t pos = close + 2;
  // Every argument: a command's arity and arguments can change its kind
  // (a read with the wrong arity is classified a write).
  std::vector<std::string> tokens;
  std::string tok;
  while (pos < line.size()) {
    if (tokens.size() >= kMaxTokens || !read_quoted(line, &pos, &tok)) return true;
    tokens.push_back(tok);
    if (pos < line.size() && line[pos] == ' ') ++pos;
  }
  if (tokens.empty()) return true;
  std::vector<std::string_view> args(tokens.begin(), tokens.end());
  Classification cls;
  table.classify(args, &cls);
  return cls.kind == Kind::write;
}

}  // namespace dp::commands
