#include "proxy/admin/atomic_histogram.h"

#include <doctest/doctest.h>

#include <cmath>
#include <thread>
#include <vector>

using namespace dp::admin;

TEST_CASE("an atomic histogram copied into the registry renders like Metrics::observe") {
  const double values[] = {0.00005, 0.0001, 0.0003, 0.002, 0.002, 7.0, 50.0};
  AtomicHistogram h(Metric::fsync_seconds);
  Metrics direct, copied;
  for (double v : values) {
    h.observe(v);
    direct.observe(Metric::fsync_seconds, v);
  }
  h.observe(std::nan(""));  // dropped, as by Metrics::observe
  h.copy_to(&copied);
  CHECK(copied.get(Metric::fsync_seconds) == 7);
  CHECK(copied.histogram_sum(Metric::fsync_seconds) == doctest::Approx(direct.histogram_sum(Metric::fsync_seconds)));
  const size_t bounds = metric_info(Metric::fsync_seconds).buckets.size();
  for (size_t b = 0; b < bounds; ++b) {
    CAPTURE(b);
    CHECK(copied.histogram_bucket(Metric::fsync_seconds, b) == direct.histogram_bucket(Metric::fsync_seconds, b));
  }
  // 0.0001 is a bound: "less than or equal" puts it in that bucket, with 0.00005.
  CHECK(copied.histogram_bucket(Metric::fsync_seconds, 0) == 2);
  CHECK(copied.render() == direct.render());
}

TEST_CASE("an atomic histogram counts every observation made from several threads") {
  AtomicHistogram h(Metric::fsync_batch_bytes);
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < kEach; ++i) h.observe(t == 0 ? 100.0 : 5000.0);
    });
  for (auto& t : threads) t.join();
  const AtomicHistogram::Snapshot s = h.snapshot();
  CHECK(s.count == kThreads * kEach);
  CHECK(s.sum == doctest::Approx(kEach * 100.0 + (kThreads - 1) * kEach * 5000.0));
  CHECK(s.buckets[0] == kEach);                      // <= 512
  CHECK(s.buckets[2] == (kThreads - 1) * kEach);     // <= 16384
}

TEST_CASE("set_histogram ignores a metric that is not a histogram or a wrong bucket count") {
  Metrics m;
  const std::vector<uint64_t> two{1, 2};
  m.set_histogram(Metric::clients_connected, two, 3, 3);
  CHECK(m.get(Metric::clients_connected) == 0);
  m.set_histogram(Metric::fsync_seconds, two, 3, 3);
  CHECK(m.get(Metric::fsync_seconds) == 0);
}
