// The proxy's metrics: ONE table (DP_METRICS below) names every metric, its
// Prometheus type, label and help text.  The Metric enum, the registry's
// storage, the exposition text and the naming-convention tests are all
// generated from it; add a metric by adding one line.
//
// Threads: a Metrics object belongs to the loop thread.  Figures kept by other
// threads (the log writer's fsync timings) are copied in by the loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace dp::admin {

// Label sets: one label name with a fixed, small list of values.  The
// per-set enums give the label index to pass to inc/set/observe.
#define DP_COMMAND_CLASSES(X) X(read) X(write) X(keyspace_read) X(other) X(proxy)
// Hold kinds: write = a reply (or WAITAOF answer) that waits for its write
// to be durable; read = a read of a key with a write not yet durable;
// notification = pub/sub, keyspace and tracking messages; ordered = a reply
// ready to go but queued behind a held one (replies leave in order).
#define DP_HOLD_KINDS(X) X(write) X(read) X(notification) X(ordered)
#define DP_ERROR_CAUSES(X)                                                        \
  X(client_protocol)  /* malformed client request */                              \
  X(hold_timeout)     /* a held reply could not become durable in time */         \
  X(backpressure)     /* a client was paused for held-reply memory */              \
  X(upstream_io)      /* control or session upstream connection failed */          \
  X(replica_link)     /* replication handshake or stream failed */                 \
  X(log_io)           /* write or fsync of the durable log failed */               \
  X(checkpoint)       /* a checkpoint failed */                                     \
  X(restore)          /* a restore failed */                                        \
  X(admin_request)    /* malformed, oversized or unauthorized admin request */

#define DP_ENUM_ITEM(name) name,
enum class CommandClass : int { DP_COMMAND_CLASSES(DP_ENUM_ITEM) };
enum class HoldKind : int { DP_HOLD_KINDS(DP_ENUM_ITEM) };
enum class ErrorCause : int { DP_ERROR_CAUSES(DP_ENUM_ITEM) };
#undef DP_ENUM_ITEM

enum class MetricType : uint8_t { counter, gauge, histogram };
enum class LabelSet : uint8_t { none, command_class, hold_kind, error_cause };
enum class Buckets : uint8_t { none, latency, duration, bytes };

// X(enum id, exposed name after "durable_proxy_", type, label set, buckets, help)
#define DP_METRICS(X)                                                                                \
  X(clients_connected, "clients_connected", gauge, none, none,                                       \
    "Client connections open now.")                                                                  \
  X(clients_accepted_total, "clients_accepted_total", counter, none, none,                           \
    "Client connections accepted.")                                                                  \
  X(clients_rejected_total, "clients_rejected_total", counter, none, none,                           \
    "Client connections refused because listen.max_clients was reached.")                            \
  X(commands_total, "commands_total", counter, command_class, none,                                  \
    "Client commands forwarded, by how the reply gate treats them.")                                 \
  X(held_replies, "held_replies", gauge, hold_kind, none,                                            \
    "Replies held now until the log is durable, by kind.")                                           \
  X(held_bytes, "held_bytes", gauge, hold_kind, none,                                                \
    "Bytes of replies held now until the log is durable, by kind.")                                  \
  X(hold_seconds, "hold_seconds", histogram, hold_kind, latency,                                     \
    "Time a reply was held after it arrived from the upstream, by kind.")                           \
  X(hold_timeouts_total, "hold_timeouts_total", counter, none, none,                                 \
    "Held replies answered with an error because durability.hold_timeout_ms passed.")                \
  X(fsync_seconds, "fsync_seconds", histogram, none, latency,                                        \
    "Duration of one log group commit (write and fdatasync).")                                       \
  X(fsync_batch_bytes, "fsync_batch_bytes", histogram, none, bytes,                                  \
    "Stream bytes made durable by one group commit.")                                                \
  X(offset_received, "offset_received_bytes", gauge, none, none,                                     \
    "Replication offset received from the upstream's stream.")                                       \
  X(offset_fsynced, "offset_fsynced_bytes", gauge, none, none,                                       \
    "Replication offset fsynced in the log; replies up to it are released.")                        \
  X(offset_upstream, "offset_upstream_bytes", gauge, none, none,                                     \
    "Upstream master_repl_offset at the last ROLE probe.")                                           \
  X(stream_lag_bytes, "stream_lag_bytes", gauge, none, none,                                         \
    "Upstream offset minus fsynced offset: bytes executed but not yet durable.")                     \
  X(log_bytes, "log_bytes", gauge, none, none,                                                      \
    "Stream bytes held in the log, from the newest checkpoint to its end.")                        \
  X(log_failed, "log_failed", gauge, none, none,                                                     \
    "1 when a log write or fsync failed: acknowledgements stopped until restart.")                  \
  X(upstream_connected, "upstream_connected", gauge, none, none,                                     \
    "1 when the control connection to the upstream is up.")                                          \
  X(replica_link_up, "replica_link_up", gauge, none, none,                                           \
    "1 when the replication stream from the upstream is flowing.")                                   \
  X(ready, "ready", gauge, none, none, "1 when the proxy serves clients (same as /readyz).")         \
  X(upstream_reconnects_total, "upstream_reconnects_total", counter, none, none,                     \
    "Reconnections of the control or replica link to the upstream.")                                 \
  X(restores_total, "restores_total", counter, none, none,                                           \
    "Restores of an upstream that lost data, completed.")                                            \
  X(restore_seconds, "restore_seconds", histogram, none, duration,                                   \
    "Duration of one restore, from REPLICAOF to REPLICAOF NO ONE.")                                 \
  X(restore_in_progress, "restore_in_progress", gauge, none, none, "1 while a restore runs.")        \
  X(checkpoints_total, "checkpoints_total", counter, none, none, "Checkpoints completed.")           \
  X(checkpoint_seconds, "checkpoint_seconds", histogram, none, duration,                             \
    "Duration of one checkpoint, from PSYNC to the renamed MANIFEST.")                               \
  X(checkpoint_offset, "checkpoint_offset_bytes", gauge, none, none,                                 \
    "Replication offset of the newest checkpoint.")                                                  \
  X(checkpoint_timestamp, "checkpoint_last_success_timestamp_seconds", gauge, none, none,            \
    "Unix time of the newest checkpoint.")                                                           \
  X(checkpoint_bytes, "checkpoint_size_bytes", gauge, none, none,                                    \
    "Size of the newest checkpoint's RDB file.")                                                     \
  X(checkpoint_failures_total, "checkpoint_failures_total", counter, none, none,                     \
    "Checkpoints that failed or were abandoned (the previous one stayed in use).")                   \
  X(checkpoint_in_progress, "checkpoint_in_progress", gauge, none, none,                             \
    "1 while a checkpoint is being taken.")                                                          \
  X(errors_total, "errors_total", counter, error_cause, none, "Errors, by cause.")                   \
  X(admin_requests_total, "admin_requests_total", counter, none, none,                               \
    "HTTP requests answered by the admin server.")

#define DP_ENUM_ITEM(id, ...) id,
enum class Metric : uint16_t { DP_METRICS(DP_ENUM_ITEM) count_ };
#undef DP_ENUM_ITEM

constexpr std::string_view kMetricPrefix = "durable_proxy_";

struct MetricInfo {
  std::string_view name;  // full exposed name, prefix included
  MetricType type;
  std::string_view help;
  std::string_view label;                      // "" when the metric has no label
  std::span<const std::string_view> label_values;  // index -> value; empty when no label
  std::span<const double> buckets;             // histogram upper bounds, ascending, +Inf implied
};

// Static description of a metric, from the table.
const MetricInfo& metric_info(Metric m);
const char* metric_type_name(MetricType t);

// Escaping of the text exposition format 0.0.4.
std::string escape_label_value(std::string_view v);  // \ " and newline
std::string escape_help(std::string_view v);         // \ and newline
// Sample value: integers without exponent, +Inf, -Inf, NaN, else shortest round-trip.
std::string format_value(double v);

class Metrics {  // loop thread only
 public:
  Metrics();

  // A label index outside the metric's label set (or != 0 for a metric with
  // no label), or a call that does not fit the metric's type, is ignored.
  void inc(Metric m, uint64_t by = 1, int label = 0);  // counter
  // Gauge; also a counter whose total another component keeps (must not go down).
  void set(Metric m, double v, int label = 0);
  void observe(Metric m, double v, int label = 0);  // histogram
  // Same with a label enum: inc(Metric::commands_total, CommandClass::write).
  template <typename E>
    requires std::is_enum_v<E>
  void inc(Metric m, E label, uint64_t by = 1) { inc(m, by, static_cast<int>(label)); }
  template <typename E>
    requires std::is_enum_v<E>
  void set(Metric m, E label, double v) { set(m, v, static_cast<int>(label)); }
  template <typename E>
    requires std::is_enum_v<E>
  void observe(Metric m, E label, double v) { observe(m, v, static_cast<int>(label)); }

  // Counter or gauge value; for a histogram, its observation count.
  double get(Metric m, int label = 0) const;
  double histogram_sum(Metric m, int label = 0) const;
  uint64_t histogram_bucket(Metric m, size_t bucket, int label = 0) const;  // not cumulative

  // Replaces a histogram series with figures kept elsewhere (an
  // AtomicHistogram filled by another thread): per-bucket counts (not
  // cumulative, one per bound), sum and count.  Ignored on a size mismatch.
  void set_histogram(Metric m, std::span<const uint64_t> buckets, double sum, uint64_t count, int label = 0);

  std::string render() const;  // Prometheus text format 0.0.4

 private:
  struct Series {
    double value = 0;                 // counter or gauge
    double sum = 0;                   // histogram
    uint64_t count = 0;               // histogram
    std::vector<uint64_t> buckets;    // histogram, one per bound (not cumulative)
  };
  const Series* series(Metric m, int label) const;
  Series* series(Metric m, int label);

  std::vector<size_t> first_;   // per metric: index of its label 0 series
  std::vector<Series> series_;
};

}  // namespace dp::admin
