#include "proxy/admin/atomic_histogram.h"

#include <algorithm>
#include <cmath>

namespace dp::admin {

AtomicHistogram::AtomicHistogram(Metric m)
    : metric_(m),
      bounds_(metric_info(m).buckets),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void AtomicHistogram::observe(double v) {
  if (std::isnan(v)) return;
  // Same rule as Metrics::observe: the first bound >= v; past the last
  // bound only +Inf (the count) holds it.
  const size_t b = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[b].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_release);
}

AtomicHistogram::Snapshot AtomicHistogram::snapshot() const {
  Snapshot s;
  s.count = count_.load(std::memory_order_acquire);
  s.sum = sum_.load(std::memory_order_relaxed);
  s.buckets.reserve(bounds_.size());
  uint64_t in_buckets = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    s.buckets.push_back(buckets_[i].load(std::memory_order_relaxed));
    in_buckets += s.buckets.back();
  }
  // Keep the exposition consistent (cumulative buckets never above +Inf)
  // when an observe() ran between the loads above.
  s.count = std::max(s.count, in_buckets + buckets_[bounds_.size()].load(std::memory_order_relaxed));
  return s;
}

void AtomicHistogram::copy_to(Metrics* metrics, int label) const {
  const Snapshot s = snapshot();
  metrics->set_histogram(metric_, s.buckets, s.sum, s.count, label);
}

}  // namespace dp::admin
