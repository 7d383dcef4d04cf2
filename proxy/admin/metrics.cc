// The metric registry: storage laid out once from the table, and the
// Prometheus text exposition (format 0.0.4).
#include "proxy/admin/metrics.h"

#include <algorithm>
#include <cmath>

namespace dp::admin {
namespace {

size_t series_count(const MetricInfo& info) {
  return info.label_values.empty() ? 1 : info.label_values.size();
}

// `{label="value"` plus an optional extra pair, closed; "" when no labels.
std::string label_block(const MetricInfo& info, size_t label, std::string_view extra) {
  std::string out;
  if (!info.label.empty()) {
    out += info.label;
    out += "=\"";
    out += escape_label_value(info.label_values[label]);
    out += '"';
  }
  if (!extra.empty()) {
    if (!out.empty()) out += ',';
    out += extra;
  }
  return out.empty() ? out : "{" + out + "}";
}

}  // namespace

Metrics::Metrics() {
  const size_t n = static_cast<size_t>(Metric::count_);
  first_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const MetricInfo& info = metric_info(static_cast<Metric>(i));
    first_.push_back(series_.size());
    for (size_t l = 0; l < series_count(info); ++l) {
      Series s;
      s.buckets.assign(info.buckets.size(), 0);
      series_.push_back(std::move(s));
    }
  }
}

const Metrics::Series* Metrics::series(Metric m, int label) const {
  const size_t i = static_cast<size_t>(m);
  if (i >= first_.size() || label < 0) return nullptr;
  if (static_cast<size_t>(label) >= series_count(metric_info(m))) return nullptr;
  return &series_[first_[i] + static_cast<size_t>(label)];
}

Metrics::Series* Metrics::series(Metric m, int label) {
  return const_cast<Series*>(static_cast<const Metrics*>(this)->series(m, label));
}

void Metrics::inc(Metric m, uint64_t by, int label) {
  Series* s = series(m, label);
  if (s && metric_info(m).type == MetricType::counter) s->value += static_cast<double>(by);
}

void Metrics::set(Metric m, double v, int label) {
  Series* s = series(m, label);
  if (s && metric_info(m).type != MetricType::histogram) s->value = v;
}

void Metrics::observe(Metric m, double v, int label) {
  Series* s = series(m, label);
  // A NaN would land in no bucket yet poison _sum: drop it.
  if (!s || metric_info(m).type != MetricType::histogram || std::isnan(v)) return;
  const auto& bounds = metric_info(m).buckets;
  // First bound >= v: Prometheus buckets are "less than or equal".
  const size_t b = static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
  if (b < s->buckets.size()) ++s->buckets[b];
  s->sum += v;
  ++s->count;
}

void Metrics::set_histogram(Metric m, std::span<const uint64_t> buckets, double sum, uint64_t count, int label) {
  Series* s = series(m, label);
  if (!s || metric_info(m).type != MetricType::histogram || buckets.size() != s->buckets.size()) return;
  std::copy(buckets.begin(), buckets.end(), s->buckets.begin());
  s->sum = sum;
  s->count = count;
}

double Metrics::get(Metric m, int label) const {
  const Series* s = series(m, label);
  if (!s) return 0;
  return metric_info(m).type == MetricType::histogram ? static_cast<double>(s->count) : s->value;
}

double Metrics::histogram_sum(Metric m, int label) const {
  const Series* s = series(m, label);
  return s ? s->sum : 0;
}

uint64_t Metrics::histogram_bucket(Metric m, size_t bucket, int label) const {
  const Series* s = series(m, label);
  return s && bucket < s->buckets.size() ? s->buckets[bucket] : 0;
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(16384);
  for (size_t i = 0; i < first_.size(); ++i) {
    const Metric m = static_cast<Metric>(i);
    const MetricInfo& info = metric_info(m);
    out += "# HELP ";
    out += info.name;
    out += ' ';
    out += escape_help(info.help);
    out += "\n# TYPE ";
    out += info.name;
    out += ' ';
    out += metric_type_name(info.type);
    out += '\n';
    for (size_t l = 0; l < series_count(info); ++l) {
      const Series& s = series_[first_[i] + l];
      if (info.type != MetricType::histogram) {
        out += info.name;
        out += label_block(info, l, "");
        out += ' ';
        out += format_value(s.value);
        out += '\n';
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= info.buckets.size(); ++b) {
        const bool inf = b == info.buckets.size();
        if (!inf) cumulative += s.buckets[b];
        const std::string le =
            "le=\"" + (inf ? std::string("+Inf") : format_value(info.buckets[b])) + "\"";
        out += info.name;
        out += "_bucket";
        out += label_block(info, l, le);
        out += ' ';
        out += format_value(static_cast<double>(inf ? s.count : cumulative));
        out += '\n';
      }
      out += info.name;
      out += "_sum";
      out += label_block(info, l, "");
      out += ' ';
      out += format_value(s.sum);
      out += '\n';
      out += info.name;
      out += "_count";
      out += label_block(info, l, "");
      out += ' ';
      out += format_value(static_cast<double>(s.count));
      out += '\n';
    }
  }
  return out;
}

}  // namespace dp::admin
