// Where the proxy stands with its upstream (DESIGN.md §6): one state, moved
// only along the edges below, each move logged by the proxy with its cause.
// Serving is reached only through `syncing`: a replica link started on a
// decision (or after a restore) whose stream then flows.
//
//            any ──control connection lost──▶ starting
//   starting ──COMMAND read──▶ checking ──upstream is a replica──▶ clearing ──▶ checking
//   checking ──plan_recovery──▶ syncing (fresh, adopt, resume)
//                             │ restoring ──done──▶ syncing      ──failed──▶ waiting
//                             │ refused ──every 5 s──▶ checking
//                             └ waiting (INFO unanswerable, restore not possible yet)
//   syncing ──stream flows──▶ serving
//   syncing, serving ──link lost or restarted──▶ waiting ──retry due──▶ checking
//   starting ──durability off──▶ serving
//
// A hold (the link dropped but the upstream process is the same: sessions
// go on, replies wait) is not a state of its own: it spans `waiting`,
// `checking`, `clearing` and `syncing` until the stream flows again or a
// decision other than resume ends it; the proxy keeps it as the time it
// began.  Nor is a full resync of the main link (log/FORMAT.md "History
// switch"): it is the link's, and goes on whatever the control connection
// does; the proxy does not serve or decide while it commits.
//
// Pure: no I/O; any thread.
#pragma once

namespace dp::recovery {

enum class State {
  starting,   // the control connection is down or its COMMAND table not read yet
  checking,   // INFO replication + keyspace asked: the decision is pending
  clearing,   // the upstream follows an earlier run's restore listener: promoting it back
  waiting,    // a step failed or the link dropped: the next check is due later
  restoring,  // checkpoint + log are being replayed into the upstream
  syncing,    // the replica link is started (PSYNC), its stream not flowing yet
  serving,    // verified and streaming: commands are served
  refused,    // the upstream holds another dataset and on_unknown_dataset is refuse
};

const char* to_string(State s);

// True when `to` may follow `from` (the edges above; staying put is not a move).
bool transition_allowed(State from, State to);

}  // namespace dp::recovery
