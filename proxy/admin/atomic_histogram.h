// A histogram that another thread fills without locks (the log writer's
// commit timings), copied into the loop's Metrics with
// Metrics::set_histogram() when /metrics is rendered.
//
// Threads: observe() from any number of threads; snapshot() from any
// thread.  A snapshot taken during observe() may see the bucket before the
// count: the figures are monotonic and exact once writers are quiet, which
// is all a scrape needs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "proxy/admin/metrics.h"

namespace dp::admin {

class AtomicHistogram {
 public:
  // Uses the bucket bounds of histogram `m` from the metric table.
  explicit AtomicHistogram(Metric m);
  AtomicHistogram(const AtomicHistogram&) = delete;
  AtomicHistogram& operator=(const AtomicHistogram&) = delete;

  void observe(double v);  // NaN ignored

  struct Snapshot {
    std::vector<uint64_t> buckets;  // one per bound, not cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;
  // Copies the snapshot into `metrics` (the metric given at construction).
  void copy_to(Metrics* metrics, int label = 0) const;

 private:
  Metric metric_;
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

}  // namespace dp::admin
