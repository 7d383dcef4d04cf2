// The static side of the metric table: names, help, label values and
// histogram buckets, expanded from DP_METRICS in metrics.h.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "proxy/admin/metrics.h"

namespace dp::admin {
namespace {

#define DP_LABEL_STRING(name) std::string_view(#name),
constexpr std::array kCommandClasses{DP_COMMAND_CLASSES(DP_LABEL_STRING)};
constexpr std::array kHoldKinds{DP_HOLD_KINDS(DP_LABEL_STRING)};
constexpr std::array kErrorCauses{DP_ERROR_CAUSES(DP_LABEL_STRING)};
#undef DP_LABEL_STRING

struct LabelInfo {
  std::string_view name;
  std::span<const std::string_view> values;
};

constexpr LabelInfo label_info(LabelSet s) {
  switch (s) {
    case LabelSet::none: return {};
    case LabelSet::command_class: return {"class", kCommandClasses};
    case LabelSet::hold_kind: return {"kind", kHoldKinds};
    case LabelSet::error_cause: return {"cause", kErrorCauses};
  }
  return {};
}

// Hold and fsync latencies: a fast disk commits in ~100 µs, a held read
// waits one commit; 10 s is the default hold timeout.
constexpr std::array kLatency{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                              0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
// Restores and checkpoints replay or copy a whole dataset.
constexpr std::array kDuration{0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0};
constexpr std::array kBytes{512.0,       4096.0,        16384.0,        65536.0,       262144.0,
                            1048576.0,   4194304.0,     16777216.0,     67108864.0};

constexpr std::span<const double> buckets(Buckets b) {
  switch (b) {
    case Buckets::none: return {};
    case Buckets::latency: return kLatency;
    case Buckets::duration: return kDuration;
    case Buckets::bytes: return kBytes;
  }
  return {};
}

#define DP_INFO_ITEM(id_, name_, type_, labels_, buckets_, help_)                           \
  MetricInfo{"durable_proxy_" name_, MetricType::type_, help_,                                 \
             label_info(LabelSet::labels_).name, label_info(LabelSet::labels_).values,          \
             buckets(Buckets::buckets_)},
const std::array<MetricInfo, static_cast<size_t>(Metric::count_)> kTable{DP_METRICS(DP_INFO_ITEM)};
#undef DP_INFO_ITEM

}  // namespace

const MetricInfo& metric_info(Metric m) { return kTable.at(static_cast<size_t>(m)); }

const char* metric_type_name(MetricType t) {
  switch (t) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  // Offsets and counters are integers well inside 2^53: print them exactly.
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace dp::admin
