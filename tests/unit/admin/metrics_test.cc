#include "proxy/admin/metrics.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <unistd.h>

using namespace dp::admin;

namespace {

constexpr size_t kMetricCount = static_cast<size_t>(Metric::count_);

// [a-z_][a-z0-9_]*: the subset of Prometheus names this project allows.
bool is_snake_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Every metric and every label value set to something, histograms observed.
Metrics filled_registry() {
  Metrics m;
  for (size_t i = 0; i < kMetricCount; ++i) {
    const Metric id = static_cast<Metric>(i);
    const MetricInfo& info = metric_info(id);
    const size_t labels = info.label_values.empty() ? 1 : info.label_values.size();
    for (size_t l = 0; l < labels; ++l) {
      const int label = static_cast<int>(l);
      switch (info.type) {
        case MetricType::counter: m.inc(id, 3 + l, label); break;
        case MetricType::gauge: m.set(id, 1.5 + static_cast<double>(l), label); break;
        case MetricType::histogram:
          m.observe(id, info.buckets.front() / 2, label);
          m.observe(id, info.buckets.back() * 2, label);
          break;
      }
    }
  }
  return m;
}

}  // namespace

TEST_CASE("every metric in the table follows Prometheus naming conventions") {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kMetricCount; ++i) {
    const MetricInfo& info = metric_info(static_cast<Metric>(i));
    CAPTURE(info.name);
    CHECK(info.name.substr(0, kMetricPrefix.size()) == kMetricPrefix);
    CHECK(is_snake_name(info.name));
    CHECK(names.insert(info.name).second);
    CHECK_FALSE(info.help.empty());
    CHECK(ends_with(info.help, "."));
    CHECK(ends_with(info.name, "_total") == (info.type == MetricType::counter));
    if (info.type == MetricType::histogram) {
      CHECK((ends_with(info.name, "_seconds") || ends_with(info.name, "_bytes")));
      REQUIRE_FALSE(info.buckets.empty());
      for (size_t b = 1; b < info.buckets.size(); ++b) CHECK(info.buckets[b - 1] < info.buckets[b]);
    } else {
      CHECK(info.buckets.empty());
    }
    CHECK(info.label.empty() == info.label_values.empty());
    if (!info.label.empty()) {
      CHECK(is_snake_name(info.label));
      CHECK(info.label != "le");
    }
  }
}

TEST_CASE("label enums index the table's label values") {
  CHECK(metric_info(Metric::commands_total).label == "class");
  CHECK(metric_info(Metric::commands_total).label_values[static_cast<int>(CommandClass::keyspace_read)] ==
        "keyspace_read");
  CHECK(metric_info(Metric::hold_seconds).label_values[static_cast<int>(HoldKind::notification)] ==
        "notification");
  CHECK(metric_info(Metric::errors_total).label_values[static_cast<int>(ErrorCause::log_io)] == "log_io");
}

TEST_CASE("counters add, gauges replace, calls that do not fit the metric are ignored") {
  Metrics m;
  m.inc(Metric::commands_total, CommandClass::write);
  m.inc(Metric::commands_total, 4, static_cast<int>(CommandClass::write));
  m.inc(Metric::commands_total, CommandClass::read);
  CHECK(m.get(Metric::commands_total, static_cast<int>(CommandClass::write)) == 5);
  CHECK(m.get(Metric::commands_total, static_cast<int>(CommandClass::read)) == 1);
  m.set(Metric::offset_fsynced, 10);
  m.set(Metric::offset_fsynced, 7);
  CHECK(m.get(Metric::offset_fsynced) == 7);

  m.inc(Metric::commands_total, 1, 99);  // label out of range
  m.inc(Metric::commands_total, 1, -1);
  m.inc(Metric::clients_connected, 1, 1);  // no label on this metric
  m.inc(Metric::offset_fsynced);           // gauge: inc ignored
  m.observe(Metric::clients_accepted_total, 1);  // not a histogram
  m.set(Metric::fsync_seconds, 3);               // histogram: set ignored
  CHECK(m.get(Metric::offset_fsynced) == 7);
  CHECK(m.get(Metric::clients_accepted_total) == 0);
  CHECK(m.get(Metric::fsync_seconds) == 0);
  CHECK(m.get(Metric::commands_total, 99) == 0);
}

TEST_CASE("histogram observations land in the first bucket whose bound is >= the value") {
  Metrics m;
  const auto& bounds = metric_info(Metric::fsync_seconds).buckets;
  m.observe(Metric::fsync_seconds, bounds[0]);         // on the bound: bucket 0
  m.observe(Metric::fsync_seconds, bounds[0] * 1.01);  // just above: bucket 1
  m.observe(Metric::fsync_seconds, 1e9);               // beyond all: only +Inf
  m.observe(Metric::fsync_seconds, std::nan(""));      // dropped
  CHECK(m.histogram_bucket(Metric::fsync_seconds, 0) == 1);
  CHECK(m.histogram_bucket(Metric::fsync_seconds, 1) == 1);
  CHECK(m.get(Metric::fsync_seconds) == 3);
  CHECK(m.histogram_sum(Metric::fsync_seconds) == doctest::Approx(bounds[0] * 2.01 + 1e9));
}

TEST_CASE("render writes HELP and TYPE once per metric and cumulative buckets ending in +Inf") {
  Metrics m;
  m.observe(Metric::hold_seconds, 0.0003, static_cast<int>(HoldKind::read));
  m.observe(Metric::hold_seconds, 0.2, static_cast<int>(HoldKind::read));
  m.set(Metric::offset_received, 123456789012.0);
  const std::string text = m.render();

  CHECK(text.find("# HELP durable_proxy_hold_seconds Time a reply was held") != std::string::npos);
  CHECK(text.find("# TYPE durable_proxy_hold_seconds histogram\n") != std::string::npos);
  CHECK(text.find("durable_proxy_hold_seconds_bucket{kind=\"read\",le=\"0.00025\"} 0\n") != std::string::npos);
  CHECK(text.find("durable_proxy_hold_seconds_bucket{kind=\"read\",le=\"0.0005\"} 1\n") != std::string::npos);
  CHECK(text.find("durable_proxy_hold_seconds_bucket{kind=\"read\",le=\"0.25\"} 2\n") != std::string::npos);
  CHECK(text.find("durable_proxy_hold_seconds_bucket{kind=\"read\",le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(text.find("durable_proxy_hold_seconds_count{kind=\"read\"} 2\n") != std::string::npos);
  CHECK(text.find("durable_proxy_hold_seconds_sum{kind=\"read\"} 0.2003\n") != std::string::npos);
  CHECK(text.find("durable_proxy_hold_seconds_count{kind=\"write\"} 0\n") != std::string::npos);
  CHECK(text.find("durable_proxy_offset_received_bytes 123456789012\n") != std::string::npos);
  CHECK(text.find("# TYPE durable_proxy_commands_total counter\n") != std::string::npos);
  CHECK(text.find("durable_proxy_commands_total{class=\"proxy\"} 0\n") != std::string::npos);

  size_t help_lines = 0, type_lines = 0;
  for (size_t at = 0; (at = text.find("\n# HELP ", at)) != std::string::npos; ++at) ++help_lines;
  for (size_t at = 0; (at = text.find("# TYPE ", at)) != std::string::npos; ++at) ++type_lines;
  CHECK(help_lines + 1 == kMetricCount);  // the first HELP has no newline before it
  CHECK(type_lines == kMetricCount);
  CHECK(text.back() == '\n');
}

TEST_CASE("label values and help text are escaped as the exposition format requires") {
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_help("x\\y\nz \"q\"") == "x\\\\y\\nz \"q\"");
}

TEST_CASE("sample values print integers exactly and fractions round-trip") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(9007199254740991.0) == "9007199254740991");
  CHECK(format_value(0.1) == "0.1");
  CHECK(format_value(0.00025) == "0.00025");
  CHECK(std::strtod(format_value(1.0 / 3).c_str(), nullptr) == 1.0 / 3);
  CHECK(format_value(INFINITY) == "+Inf");
  CHECK(format_value(-INFINITY) == "-Inf");
  CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("promtool accepts the exposition of a registry with every metric set") {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) {
    MESSAGE("promtool not installed: skipped (Debian package prometheus)");
    return;
  }
  char path[] = "/tmp/dp_metrics_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream out(path);
    out << filled_registry().render();
  }
  const std::string cmd = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string output;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) output += buf;
  const int rc = pclose(p);
  unlink(path);
  CAPTURE(output);
  CHECK(rc == 0);
  CHECK(output.empty());  // lint findings are printed even when the exit code is 0
}
