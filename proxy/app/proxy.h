// The proxy process: owns the loop, the listener, the sessions, the links
// to the upstream, the durable log and the gate, and decides when to serve.
//
//   clients ─▶ listener ─▶ Session (1:1 upstream conn) ─▶ upstream
//                             │ held replies           ▲      │ replication stream
//                             ▼                        │      ▼
//                        DurabilityGate ◀─ ROLE ── ControlLink  ReplicaLink ─▶ DurableLog
//                             ▲                                  (+StreamTracker) │
//                             └────────── durable offset (uv_async) ◀─────────────┘
//
// States (proxy/recovery/recovery_state.h): starting (connect, read COMMAND)
// → checking (the recovery decision) → restoring / syncing → serving; any
// loss of the upstream drops back until the recovery check passes again, so
// no command reaches an upstream that lost acknowledged data.
// Loop thread only, except the log's on_durable (any thread → uv_async).
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "config/config.h"
#include "log/checkpoint_store.h"
#include "log/durable_log.h"
#include "proxy/admin/admin_server.h"
#include "proxy/admin/atomic_histogram.h"
#include "proxy/admin/metrics.h"
#include "proxy/checkpoint/checkpointer.h"
#include "proxy/session/context.h"
#include "proxy/session/shared_upstream.h"
#include "proxy/recovery/recovery_plan.h"
#include "proxy/recovery/recovery_state.h"
#include "proxy/recovery/restorer.h"
#include "proxy/gate/durability_gate.h"
#include "proxy/gate/stream_tracker.h"
#include "proxy/upstream/control_link.h"
#include "proxy/upstream/replica_link.h"
#include "proxy/upstream/upstream_info.h"

namespace dp {

class Session;

class Proxy : public upstream::ReplicaLink::Listener {
 public:
  explicit Proxy(config::Config cfg);
  ~Proxy() override;
  // Runs until SIGTERM/SIGINT (or a fatal error). Returns the exit code.
  int run();

  // ReplicaLink::Listener
  void on_full_resync(const std::string& replid, uint64_t offset) override;
  void on_rdb_data(std::string_view bytes) override;
  void on_rdb_done() override;
  void on_continue(const std::string& new_replid) override;
  void on_stream(std::string_view bytes, uint64_t first_offset) override;
  void on_state(upstream::LinkState state, const std::string& reason) override;

 private:
  bool start(std::string* error);
  static void on_accept(uv_stream_t* server, int status);
  static void on_tick(uv_timer_t* t);
  static void on_check(uv_check_t* c);
  static void on_durable_async(uv_async_t* a);
  static void on_signal(uv_signal_t* s, int signum);

  void control_up();
  void control_down(const std::string& reason);
  void load_command_table();
  // Moves state_ along an edge of recovery_state.h and logs it with `why`.
  void enter(recovery::State next, const std::string& why);
  bool verified() const { return state_ == recovery::State::syncing || state_ == recovery::State::serving; }
  bool stopping() const { return shutdown_ != Shutdown::running; }
  void check_recovery();
  // Sends INFO replication + keyspace and decides on the answer;
  // `leftover_checked`: clear_leftover_restore() already looked at this replica.
  void ask_upstream(bool leftover_checked);
  void recheck_later(const char* what, const resp::Value* r);
  void check_sync_delay();  // warns when the upstream delays every diskless full sync
  void decide(const upstream::UpstreamInfo& up, uint64_t end_at_request, bool leftover_checked);
  void start_replica_link(const std::string& replid, uint64_t offset);
  // Closes the main link (safe inside its callbacks: freed once closed),
  // abandons a history switch in progress, stops serving with `why` and
  // re-checks the upstream after the link backoff.
  void restart_link(const std::string& why);
  // A full resync of the main link in progress (the Checkpointer writes
  // it): the old history stands until its commit.
  bool switching_history() const { return checkpointer_ && checkpointer_->history_running(); }
  void history_switched(const Checkpointer::HistoryResult& r);
  void serve_if_verified();  // the stream flows after a decision: serve
  void start_restore(const recovery::RecoveryPlan& plan);  // proxy_restore.cc
  void restore_finished(const RestoreResult& result);
  void clear_leftover_restore();
  void set_serving(bool serving, const std::string& why);
  void durable_moved();
  void log_failed(const std::string& reason);
  void send_probe(uint64_t id);
  void tick();
  void begin_shutdown(const char* why);
  void finish_shutdown();
  void close_all_handles();
  void refresh_metrics();
  bool ready(std::string* reason) const;
  std::unique_ptr<Checkpointer> make_checkpointer();                // proxy_checkpoint.cc
  admin::CheckpointAnswer checkpoint_request(std::string* message);  // POST /checkpoint
  std::string info_durability() const;
  std::string status_json() const;

  config::Config cfg_;
  uv_loop_t loop_{};
  ProxyContext ctx_;
  std::unique_ptr<char[]> read_buf_;
  uv_tcp_t listener_{};
  uv_timer_t tick_{};
  uv_check_t check_{};
  uv_async_t durable_async_{};
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  bool listening_ = false;

  admin::Metrics metrics_;
  // Filled by the log committer threads (LogOptions::on_commit), copied into
  // metrics_ by refresh_metrics(); declared before log_ so they outlive it.
  admin::AtomicHistogram fsync_seconds_{admin::Metric::fsync_seconds};
  admin::AtomicHistogram fsync_batch_bytes_{admin::Metric::fsync_batch_bytes};
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<SharedPool> shared_pool_;  // upstream.sharing: auto
  std::unique_ptr<upstream::ControlLink> control_;
  std::unique_ptr<upstream::ReplicaLink> link_;
  std::unique_ptr<log::DurableLog> log_;
  std::unique_ptr<log::CheckpointStore> checkpoints_;
  // Stream bytes after a full resync's RDB that arrive while its checkpoint
  // commits on the pool: logged once the log follows the new history.
  std::string held_stream_;
  uint64_t held_stream_first_ = 0;
  std::unique_ptr<gate::DurabilityGate> gate_;
  std::unique_ptr<StreamTracker> tracker_;
  std::unique_ptr<Checkpointer> checkpointer_;  // every checkpoint write: its own link's, the main link's resyncs
  std::unique_ptr<RestoreJob> restorer_;  // while a restore runs (REPLICAOF, or a cluster node's AOF)
  int restores_closing_ = 0;              // finished restores whose close() has not completed

  std::unordered_map<uint64_t, Session*> sessions_;
  uint64_t next_session_id_ = 1;

  // start-up / recovery state (proxy/recovery/recovery_state.h)
  recovery::State state_ = recovery::State::starting;
  // A hold in progress, since this time: the link dropped but the upstream
  // is the same process, so sessions keep forwarding and replies are held
  // until the link is back and verified (spans waiting, checking, clearing, syncing).
  // A hold longer than durability.hold_timeout stops serving.
  // The link was started for another dataset (fresh/adopt): its history
  // restarts the gate (history_switched).
  bool foreign_history_ = false;
  std::optional<uint64_t> hold_since_ms_;
  std::string not_ready_;         // why the proxy does not serve
  uint64_t control_retry_at_ = 0;
  uint64_t control_backoff_ms_ = 100;
  uint64_t link_retry_at_ = 0;
  uint64_t link_backoff_ms_ = 100;
  bool link_streaming_ = false;  // the main replica link's last state was `streaming`
  // The upstream's identity across a replica-link drop: the control
  // connection is numbered on every connect; one that never dropped since
  // the link was verified proves the same process (its data intact).
  uint64_t control_gen_ = 0;
  uint64_t verified_control_gen_ = 0;
  uint64_t tracked_end_ = 0;  // the stream tracker has seen bytes up to here
  // Shutdown, per instance: draining (held replies still delivered), then
  // expiring (shutdown.timeout passed: held replies failed, a short grace
  // for the errors to reach the clients), then closed (handles closing).
  enum class Shutdown { running, draining, expiring, closed };
  Shutdown shutdown_ = Shutdown::running;
  uint64_t shutdown_deadline_ = 0;
  int exit_code_ = 0;
  std::string fatal_;
  uint64_t last_probe_offset_ = 0;
  bool probe_failing_ = false;  // said so in the log once
  bool probe_retry_ = false;  // a ROLE probe got an error answer: resend the unanswered ones on the next tick
};

}  // namespace dp
