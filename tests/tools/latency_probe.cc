// latency_probe HOST PORT COUNT [VALUE_SIZE]
//
// One client, one command at a time (c1 P1): alternates SET and GET on
// random keys out of 100000 with VALUE_SIZE-byte values (default 64, as
// redis-benchmark -d 64 -r 100000), times every round trip with a monotonic
// clock, and prints one line:
//   p50_us=<..> p90_us=<..> p99_us=<..> mean_us=<..> count=<COUNT>
// redis-benchmark's histogram is too coarse (buckets of 8-16 us at these
// latencies) to judge a 40 us overhead, hence this probe.  Used by
// tests/bench/passthrough_bench.sh.  Exits 1 with the cause on any error
// reply or connection failure.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: latency_probe HOST PORT COUNT [VALUE_SIZE]\n");
    return 2;
  }
  const long count = std::atol(argv[3]);
  const size_t value_size = argc == 5 ? static_cast<size_t>(std::atol(argv[4])) : 64;
  if (count <= 0) {
    std::fprintf(stderr, "latency_probe: COUNT must be positive, got '%s'\n", argv[3]);
    return 2;
  }
  timeval timeout{10, 0};
  redisContext* c = redisConnectWithTimeout(argv[1], std::atoi(argv[2]), timeout);
  if (c == nullptr || c->err) {
    std::fprintf(stderr, "latency_probe: connect %s:%s: %s\n", argv[1], argv[2],
                 c ? c->errstr : "out of memory");
    return 1;
  }
  redisSetTimeout(c, timeout);
  const std::string value(value_size, 'x');
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> key_dist(0, 99999);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  // A short warm-up so connection setup and first allocations are not timed.
  for (long i = -200; i < count; ++i) {
    std::string key = "key:" + std::to_string(key_dist(rng));
    const char* argv_set[] = {"SET", key.c_str(), value.data()};
    const size_t len_set[] = {3, key.size(), value.size()};
    const char* argv_get[] = {"GET", key.c_str()};
    const size_t len_get[] = {3, key.size()};
    auto t0 = std::chrono::steady_clock::now();
    void* r = (i & 1) ? redisCommandArgv(c, 2, argv_get, len_get) : redisCommandArgv(c, 3, argv_set, len_set);
    auto t1 = std::chrono::steady_clock::now();
    if (r == nullptr) {
      std::fprintf(stderr, "latency_probe: request %ld: %s\n", i, c->errstr);
      return 1;
    }
    auto* reply = static_cast<redisReply*>(r);
    if (reply->type == REDIS_REPLY_ERROR) {
      std::fprintf(stderr, "latency_probe: request %ld: error reply %s\n", i, reply->str);
      freeReplyObject(reply);
      return 1;
    }
    freeReplyObject(reply);
    if (i >= 0) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  redisFree(c);
  double sum = 0;
  for (double v : us) sum += v;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<size_t>(p * static_cast<double>(us.size() - 1))]; };
  std::printf("p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f count=%zu\n", pct(0.5), pct(0.9), pct(0.99),
              sum / static_cast<double>(us.size()), us.size());
  return 0;
}
