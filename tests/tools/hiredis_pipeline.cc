// hiredis_pipeline HOST PORT COUNT
//
// A hiredis-driven pass-through check used by tests/integration: pipelines
// COUNT binary-safe SETs then COUNT GETs (plus a RESP3-free mix of types),
// checks every reply in order, and exits 0 printing "ok <replies>".  Any
// mismatch prints what was expected, what came and at which reply, and exits 1.
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Expect {
  int type;
  std::string str;  // for strings, status and errors (prefix)
  long long integer;
};

std::string value_for(int i) {
  std::string v = "val-" + std::to_string(i) + std::string("\0\r\n", 3);
  v.append(static_cast<size_t>(i % 97), static_cast<char>('a' + i % 26));
  return v;
}

void append(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
}

bool matches(const redisReply* r, const Expect& e) {
  if (r->type != e.type) return false;
  switch (e.type) {
    case REDIS_REPLY_INTEGER:
      return r->integer == e.integer;
    case REDIS_REPLY_ERROR:
      return std::string(r->str, r->len).compare(0, e.str.size(), e.str) == 0;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(r->str, r->len) == e.str;
    default:
      return true;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hiredis_pipeline HOST PORT COUNT\n");
    return 2;
  }
  const int count = std::atoi(argv[3]);
  timeval timeout{10, 0};
  redisContext* c = redisConnectWithTimeout(argv[1], std::atoi(argv[2]), timeout);
  if (c == nullptr || c->err) {
    std::fprintf(stderr, "hiredis_pipeline: connect %s:%s: %s\n", argv[1], argv[2],
                 c ? c->errstr : "out of memory");
    return 1;
  }
  redisSetTimeout(c, timeout);
  std::vector<Expect> want;
  for (int i = 0; i < count; ++i) {
    append(c, {"SET", "hp:" + std::to_string(i), value_for(i)});
    want.push_back({REDIS_REPLY_STATUS, "OK", 0});
  }
  for (int i = 0; i < count; ++i) {
    append(c, {"GET", "hp:" + std::to_string(i)});
    want.push_back({REDIS_REPLY_STRING, value_for(i), 0});
  }
  append(c, {"GET", "hp:missing"});
  want.push_back({REDIS_REPLY_NIL, "", 0});
  append(c, {"INCRBY", "hp:n", "41"});
  want.push_back({REDIS_REPLY_INTEGER, "", 41});
  append(c, {"LPUSH", "hp:0", "x"});
  want.push_back({REDIS_REPLY_ERROR, "WRONGTYPE", 0});
  append(c, {"RPUSH", "hp:list", "a", "b"});
  want.push_back({REDIS_REPLY_INTEGER, "", 2});
  append(c, {"LRANGE", "hp:list", "0", "-1"});
  want.push_back({REDIS_REPLY_ARRAY, "", 0});

  for (size_t i = 0; i < want.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) {
      std::fprintf(stderr, "hiredis_pipeline: reply %zu of %zu: %s\n", i, want.size(), c->errstr);
      return 1;
    }
    auto* r = static_cast<redisReply*>(raw);
    bool ok = matches(r, want[i]);
    if (ok && r->type == REDIS_REPLY_ARRAY)
      ok = r->elements == 2 && std::string(r->element[0]->str) == "a" &&
           std::string(r->element[1]->str) == "b";
    if (!ok) {
      std::fprintf(stderr, "hiredis_pipeline: reply %zu: want type %d '%s' %lld, got type %d '%s' %lld\n",
                   i, want[i].type, want[i].str.c_str(), want[i].integer, r->type,
                   r->str ? std::string(r->str, r->len).c_str() : "", r->integer);
      freeReplyObject(r);
      return 1;
    }
    freeReplyObject(r);
  }
  redisFree(c);
  std::printf("ok %zu\n", want.size());
  return 0;
}
