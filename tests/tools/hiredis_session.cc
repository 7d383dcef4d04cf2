// hiredis_session HOST PORT SCENARIO
//
// Connection-state scenarios driven through hiredis (a real client library;
// hiredis 0.14 speaks RESP2 only), used by tests/integration/
// test_passthrough_clients.py.  Each scenario checks every reply itself and
// prints one line "ok <scenario>"; any surprise prints the reply index, what
// was expected and what came, and exits 1.
//
//   client-reply  CLIENT REPLY OFF/SKIP/ON pipelined: the skipped replies
//                 never arrive, the others stay in order
//   transaction   SELECT, MULTI/EXEC, DISCARD, EXECABORT, WATCH conflict
//                 (made on a second connection) answering a null array
//   pubsub        SUBSCRIBE/PSUBSCRIBE, messages published by a second
//                 connection, PING in subscribed mode, UNSUBSCRIBE
//   blocking      BLPOP served by a push from a second connection, a
//                 pipelined command behind it, then CLIENT UNBLOCK
//   error         the first reply must be an error naming this HOST:PORT
//                 pair's upstream (for the unreachable-upstream test); prints
//                 "ok error <text>"
#include <hiredis/hiredis.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

const char* g_host;
int g_port;
int g_step = 0;

redisContext* connect_or_die() {
  timeval timeout{10, 0};
  redisContext* c = redisConnectWithTimeout(g_host, g_port, timeout);
  if (c == nullptr || c->err) {
    std::fprintf(stderr, "hiredis_session: connect %s:%d: %s\n", g_host, g_port, c ? c->errstr : "out of memory");
    std::exit(1);
  }
  redisSetTimeout(c, timeout);
  return c;
}

// "+OK" / "-ERR..." / ":5" / "$v" / "nil" / "*[a,b]" : a compact rendering.
std::string render(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return "+" + std::string(r->str, r->len);
    case REDIS_REPLY_ERROR:
      return "-" + std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return ":" + std::to_string(r->integer);
    case REDIS_REPLY_STRING:
      return "$" + std::string(r->str, r->len);
    case REDIS_REPLY_NIL:
      return "nil";
    case REDIS_REPLY_ARRAY: {
      std::string s = "*[";
      for (size_t i = 0; i < r->elements; ++i) s += (i ? "," : "") + render(r->element[i]);
      return s + "]";
    }
    default:
      return "?type" + std::to_string(r->type);
  }
}

std::string next_reply(redisContext* c) {
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK) {
    std::fprintf(stderr, "hiredis_session: step %d: no reply: %s\n", g_step, c->errstr);
    std::exit(1);
  }
  std::string s = render(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return s;
}

void expect(redisContext* c, const std::string& want, bool prefix = false) {
  ++g_step;
  std::string got = next_reply(c);
  if (prefix ? got.compare(0, want.size(), want) != 0 : got != want) {
    std::fprintf(stderr, "hiredis_session: step %d: want %s'%s', got '%s'\n", g_step, prefix ? "prefix " : "",
                 want.c_str(), got.c_str());
    std::exit(1);
  }
}

void send(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
}

// hiredis only buffers appended commands until a reply is read: push them
// out now (for commands that must reach the server before a reply is awaited).
void flush(redisContext* c) {
  int done = 0;
  while (!done) {
    if (redisBufferWrite(c, &done) != REDIS_OK) {
      std::fprintf(stderr, "hiredis_session: step %d: write failed: %s\n", g_step, c->errstr);
      std::exit(1);
    }
  }
}

void call(redisContext* c, const std::vector<std::string>& args, const std::string& want, bool prefix = false) {
  send(c, args);
  expect(c, want, prefix);
}

int client_reply() {
  redisContext* c = connect_or_die();
  send(c, {"CLIENT", "REPLY", "OFF"});
  send(c, {"SET", "hs:r", "1"});
  send(c, {"INCR", "hs:r"});
  send(c, {"CLIENT", "REPLY", "ON"});
  send(c, {"GET", "hs:r"});
  send(c, {"CLIENT", "REPLY", "SKIP"});
  send(c, {"INCR", "hs:r"});
  send(c, {"GET", "hs:r"});
  expect(c, "+OK");  // CLIENT REPLY ON
  expect(c, "$2");
  expect(c, "$3");   // the SKIPped INCR ran, its reply did not come
  call(c, {"PING"}, "+PONG");
  redisFree(c);
  return 0;
}

int transaction() {
  redisContext* c = connect_or_die();
  redisContext* other = connect_or_die();
  call(c, {"SELECT", "5"}, "+OK");
  send(c, {"MULTI"});
  send(c, {"SET", "hs:t", "1"});
  send(c, {"INCR", "hs:t"});
  send(c, {"EXEC"});
  expect(c, "+OK");
  expect(c, "+QUEUED");
  expect(c, "+QUEUED");
  expect(c, "*[+OK,:2]");
  call(other, {"GET", "hs:t"}, "nil");  // other connection: still db 0
  call(other, {"SELECT", "5"}, "+OK");
  call(other, {"GET", "hs:t"}, "$2");
  call(c, {"MULTI"}, "+OK");
  call(c, {"SET", "hs:t", "discarded"}, "+QUEUED");
  call(c, {"DISCARD"}, "+OK");
  call(c, {"GET", "hs:t"}, "$2");
  call(c, {"MULTI"}, "+OK");
  call(c, {"NOSUCHCOMMAND"}, "-ERR", true);
  call(c, {"EXEC"}, "-EXECABORT", true);
  call(c, {"WATCH", "hs:t"}, "+OK");
  call(other, {"SET", "hs:t", "changed"}, "+OK");
  call(c, {"MULTI"}, "+OK");
  call(c, {"SET", "hs:t", "mine"}, "+QUEUED");
  call(c, {"EXEC"}, "nil");  // WATCH conflict: null array
  call(c, {"GET", "hs:t"}, "$changed");
  redisFree(other);
  redisFree(c);
  return 0;
}

int pubsub() {
  redisContext* sub = connect_or_die();
  redisContext* pub = connect_or_die();
  send(sub, {"SUBSCRIBE", "hs:a", "hs:b"});
  send(sub, {"PSUBSCRIBE", "hs:p*"});
  expect(sub, "*[$subscribe,$hs:a,:1]");
  expect(sub, "*[$subscribe,$hs:b,:2]");
  expect(sub, "*[$psubscribe,$hs:p*,:3]");
  call(pub, {"PUBLISH", "hs:a", "one"}, ":1");
  call(pub, {"PUBLISH", "hs:pz", "two"}, ":1");
  expect(sub, "*[$message,$hs:a,$one]");
  expect(sub, "*[$pmessage,$hs:p*,$hs:pz,$two]");
  call(sub, {"PING"}, "*[$pong,$]");
  call(sub, {"GET", "x"}, "-ERR", true);  // refused in RESP2 subscribed mode
  call(sub, {"UNSUBSCRIBE", "hs:a"}, "*[$unsubscribe,$hs:a,:2]");
  call(pub, {"PUBLISH", "hs:a", "nobody"}, ":0");
  call(sub, {"PUNSUBSCRIBE"}, "*[$punsubscribe,$hs:p*,:1]");
  call(sub, {"UNSUBSCRIBE"}, "*[$unsubscribe,$hs:b,:0]");
  call(sub, {"GET", "x"}, "nil");  // out of subscribed mode
  redisFree(pub);
  redisFree(sub);
  return 0;
}

int blocking() {
  redisContext* c = connect_or_die();
  redisContext* other = connect_or_die();
  send(c, {"CLIENT", "ID"});
  ++g_step;
  std::string id = next_reply(c).substr(1);
  send(c, {"BLPOP", "hs:q", "0"});
  send(c, {"SET", "hs:after", "1"});
  flush(c);
  call(other, {"EXISTS", "hs:after"}, ":0");  // queued behind the blocked pop
  call(other, {"RPUSH", "hs:q", "job"}, ":1");
  expect(c, "*[$hs:q,$job]");
  expect(c, "+OK");
  send(c, {"BLPOP", "hs:never", "0"});
  send(c, {"PING"});
  flush(c);
  // CLIENT UNBLOCK answers 0 until the pop is really blocked: retry briefly.
  std::string r;
  for (int i = 0; i < 200; ++i) {
    send(other, {"CLIENT", "UNBLOCK", id});
    r = next_reply(other);
    if (r == ":1") break;
    struct timespec ts {0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  if (r != ":1") {
    std::fprintf(stderr, "hiredis_session: CLIENT UNBLOCK %s never answered 1 (last %s)\n", id.c_str(), r.c_str());
    return 1;
  }
  expect(c, "nil");
  expect(c, "+PONG");
  redisFree(other);
  redisFree(c);
  return 0;
}

int error() {
  redisContext* c = connect_or_die();
  send(c, {"PING"});
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK) {
    std::fprintf(stderr, "hiredis_session: no error reply, connection ended: %s\n", c->errstr);
    return 1;
  }
  auto* r = static_cast<redisReply*>(raw);
  if (r->type != REDIS_REPLY_ERROR) {
    std::fprintf(stderr, "hiredis_session: want an error reply, got %s\n", render(r).c_str());
    return 1;
  }
  std::printf("ok error %s\n", r->str);
  freeReplyObject(r);
  // then the proxy closes: the next read must fail
  send(c, {"PING"});
  if (redisGetReply(c, &raw) == REDIS_OK) {
    std::fprintf(stderr, "hiredis_session: connection still open after the error\n");
    return 1;
  }
  redisFree(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hiredis_session HOST PORT client-reply|transaction|pubsub|blocking|error\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // writes to a closed connection must fail, not kill
  g_host = argv[1];
  g_port = std::atoi(argv[2]);
  const std::string s = argv[3];
  int rc;
  if (s == "client-reply") rc = client_reply();
  else if (s == "transaction") rc = transaction();
  else if (s == "pubsub") rc = pubsub();
  else if (s == "blocking") rc = blocking();
  else if (s == "error") return error();
  else {
    std::fprintf(stderr, "hiredis_session: unknown scenario '%s'\n", s.c_str());
    return 2;
  }
  if (rc == 0) std::printf("ok %s\n", s.c_str());
  return rc;
}
