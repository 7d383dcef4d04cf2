#include "proxy/recovery/recovery_state.h"

namespace dp::recovery {

const char* to_string(State s) {
  switch (s) {
    case State::starting: return "starting";
    case State::checking: return "checking";
    case State::clearing: return "clearing";
    case State::waiting: return "waiting";
    case State::restoring: return "restoring";
    case State::syncing: return "syncing";
    case State::serving: return "serving";
    case State::refused: return "refused";
  }
  return "?";
}

bool transition_allowed(State from, State to) {
  if (from == to) return false;
  if (to == State::starting) return true;  // the control connection can drop at any time
  switch (from) {
    case State::starting: return to == State::checking || to == State::serving;
    case State::checking:
      return to == State::clearing || to == State::waiting || to == State::syncing ||
             to == State::restoring || to == State::refused;
    case State::clearing: return to == State::checking;
    case State::waiting: return to == State::checking;
    case State::restoring: return to == State::syncing || to == State::waiting;
    case State::syncing: return to == State::serving || to == State::waiting;
    case State::serving: return to == State::waiting;
    case State::refused: return to == State::checking;
  }
  return false;
}

}  // namespace dp::recovery
