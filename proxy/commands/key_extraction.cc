#include "proxy/commands/key_extraction.h"

#include <cstdint>

namespace dp::commands {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Strict non-negative decimal, as the server reads numkeys and db indexes.
bool parse_count(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

int parse_db(std::string_view s) {
  int64_t v = 0;
  return parse_count(s, &v) && v <= INT32_MAX ? static_cast<int>(v) : -1;
}

void push_range(int64_t first, int64_t last, int64_t step, const Args& args,
                std::vector<std::string_view>* keys) {
  const int64_t argc = static_cast<int64_t>(args.size());
  if (first < 1 || first >= argc || last < first || last >= argc) return;
  if (step < 1) step = 1;
  for (int64_t i = first; i <= last; i += step) keys->push_back(args[static_cast<size_t>(i)]);
}

// Index of the first key after `keyword`, or 0 when it is absent.  Scans
// forward from startfrom (the last argument cannot be the keyword: nothing
// would follow it) or backward from argc+startfrom, never to argv[0].
int64_t find_keyword(std::string_view keyword, int startfrom, const Args& args) {
  const int64_t argc = static_cast<int64_t>(args.size());
  if (startfrom > 0) {
    for (int64_t i = startfrom; i < argc - 1; ++i)
      if (equals_nocase(args[static_cast<size_t>(i)], keyword)) return i + 1;
  } else {
    for (int64_t i = argc + startfrom; i >= 1; --i)
      if (i < argc && equals_nocase(args[static_cast<size_t>(i)], keyword)) return i + 1;
  }
  return 0;
}

void sort_keys(const Args& args, bool read_only, Classification* out) {
  // SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
  // [ALPHA] [STORE destination].  A BY/GET pattern with '*' reads keys
  // named by the sorted elements: unknowable here.
  bool reads_other_keys = false;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string_view tok = args[i];
    bool has_arg = i + 1 < args.size();
    if (has_arg && (equals_nocase(tok, "by") || equals_nocase(tok, "get"))) {
      if (args[i + 1].find('*') != std::string_view::npos) reads_other_keys = true;
      ++i;
    } else if (has_arg && equals_nocase(tok, "store")) {
      out->keys.push_back(args[++i]);  // every STORE: the server keeps the last
    } else if (i + 2 < args.size() && equals_nocase(tok, "limit")) {
      i += 2;
    }
  }
  if (read_only && reads_other_keys) out->kind = Kind::keyspace_read;
}

void migrate_keys(const Args& args, Classification* out) {
  // MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw]
  // [AUTH2 user pw] [KEYS key ...].  Over-collecting only holds more.
  if (args.size() > 3 && !args[3].empty()) out->keys.push_back(args[3]);
  for (size_t i = 6; i < args.size(); ++i) {
    std::string_view tok = args[i];
    if (equals_nocase(tok, "keys")) {
      for (size_t k = i + 1; k < args.size(); ++k) out->keys.push_back(args[k]);
      return;
    }
    if (equals_nocase(tok, "auth")) i += 1;
    else if (equals_nocase(tok, "auth2")) i += 2;
  }
}

// BITFIELD key [GET type offset] [SET type offset value]
// [INCRBY type offset increment] [OVERFLOW WRAP|SAT|FAIL] ...: a read when
// every operation is GET (or OVERFLOW); anything else may write.
void bitfield_kind(const Args& args, Classification* out) {
  if (args.size() < 2) return;  // arity error: stays a write
  size_t i = 2;
  while (i < args.size()) {
    std::string_view tok = args[i];
    if (equals_nocase(tok, "get") && i + 2 < args.size()) {
      i += 3;
    } else if (equals_nocase(tok, "overflow") && i + 1 < args.size()) {
      i += 2;
    } else {
      return;  // SET, INCRBY, or something we do not understand
    }
  }
  out->kind = Kind::read;
}

// XREAD [COUNT n] [BLOCK ms] STREAMS ...;
// XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS ...
void xread_blocking(const Args& args, bool group, Classification* out) {
  out->blocking = false;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view tok = args[i];
    if (equals_nocase(tok, "streams")) return;
    if (group && equals_nocase(tok, "group")) {
      i += 2;
    } else if (equals_nocase(tok, "count")) {
      i += 1;
    } else if (equals_nocase(tok, "block")) {
      out->blocking = i + 1 < args.size();
      i += 1;
    }
  }
}

}  // namespace

bool equals_nocase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

void keys_from_range(int first, int last, int step, const Args& args,
                     std::vector<std::string_view>* keys) {
  if (first <= 0) return;
  int64_t argc = static_cast<int64_t>(args.size());
  int64_t end = last < 0 ? argc + last : last;
  if (end >= argc) end = argc - 1;  // legacy triple on a short call: what is there
  push_range(first, end, step, args, keys);
}

void keys_from_specs(const std::vector<KeySpec>& specs, const Args& args,
                     std::vector<std::string_view>* keys) {
  const int64_t argc = static_cast<int64_t>(args.size());
  for (const KeySpec& s : specs) {
    if (s.not_key) continue;
    int64_t first = 0;
    if (s.begin == KeySpec::Begin::index) {
      first = s.index;
    } else if (s.begin == KeySpec::Begin::keyword) {
      first = find_keyword(s.keyword, s.index, args);
    }
    if (first <= 0) continue;

    int64_t last = 0, step = s.keystep;
    if (s.find == KeySpec::Find::range) {
      if (s.lastkey >= 0) {
        last = first + s.lastkey;
      } else if (s.limit <= 0) {
        last = argc + s.lastkey;
      } else {  // e.g. XREAD STREAMS k1 k2 id1 id2: the first 1/limit of the rest
        last = first + (argc - first) / s.limit + s.lastkey;
      }
    } else if (s.find == KeySpec::Find::keynum) {
      int64_t numkeys = 0;
      int64_t at = first + s.keynumidx;
      if (at >= argc || !parse_count(args[static_cast<size_t>(at)], &numkeys)) continue;
      first += s.firstkey;
      last = first + numkeys - 1;
    } else {
      continue;
    }
    push_range(first, last, step, args, keys);
  }
}

void apply_handler(Handler handler, const Args& args, Classification* out) {
  switch (handler) {
    case Handler::none:
      return;
    case Handler::sort:
    case Handler::sort_ro:
      sort_keys(args, handler == Handler::sort_ro, out);
      return;
    case Handler::migrate:
      migrate_keys(args, out);
      return;
    case Handler::bitfield:
      bitfield_kind(args, out);
      return;
    case Handler::xread:
    case Handler::xreadgroup:
      xread_blocking(args, handler == Handler::xreadgroup, out);
      return;
    case Handler::swapdb:
      if (args.size() > 2) {
        out->other_db = parse_db(args[1]);
        out->other_db2 = parse_db(args[2]);
      }
      return;
    case Handler::move:
      if (args.size() > 2) out->other_db = parse_db(args[2]);
      out->db_wide = true;
      return;
    case Handler::copy:
      for (size_t i = 3; i + 1 < args.size(); ++i) {
        if (equals_nocase(args[i], "db")) {
          out->other_db = parse_db(args[i + 1]);
          out->db_wide = true;
          ++i;
        }
      }
      return;
  }
}

}  // namespace dp::commands
