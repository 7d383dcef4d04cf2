// The proxy's recovery states and the moves between them
// (proxy/recovery/recovery_state.h).
#include "proxy/recovery/recovery_state.h"

#include <doctest/doctest.h>

#include <string>

using dp::recovery::State;
using dp::recovery::transition_allowed;

namespace {
constexpr State kAll[] = {State::starting, State::checking, State::clearing, State::waiting,
                          State::restoring, State::syncing,  State::serving,  State::refused};
}  // namespace

TEST_CASE("every state falls back to starting when the control connection drops") {
  for (State s : kAll)
    if (s != State::starting) CHECK_MESSAGE(transition_allowed(s, State::starting), dp::recovery::to_string(s));
}

TEST_CASE("serving is entered only from syncing, or from starting when durability is off") {
  for (State s : kAll) {
    const bool expected = s == State::syncing || s == State::starting;
    CHECK_MESSAGE(transition_allowed(s, State::serving) == expected, dp::recovery::to_string(s));
  }
}

TEST_CASE("only a decision leaves checking, and only a new check leaves waiting and refused") {
  CHECK(transition_allowed(State::checking, State::syncing));
  CHECK(transition_allowed(State::checking, State::restoring));
  CHECK(transition_allowed(State::checking, State::refused));
  CHECK(transition_allowed(State::checking, State::clearing));
  CHECK_FALSE(transition_allowed(State::waiting, State::syncing));
  CHECK_FALSE(transition_allowed(State::waiting, State::restoring));
  CHECK_FALSE(transition_allowed(State::refused, State::syncing));
  CHECK(transition_allowed(State::waiting, State::checking));
  CHECK(transition_allowed(State::refused, State::checking));
}

TEST_CASE("a restore ends by starting the link or by waiting for a retry, never by serving") {
  CHECK(transition_allowed(State::restoring, State::syncing));
  CHECK(transition_allowed(State::restoring, State::waiting));
  CHECK_FALSE(transition_allowed(State::restoring, State::serving));
  CHECK_FALSE(transition_allowed(State::restoring, State::checking));
}

TEST_CASE("a lost link takes syncing and serving to waiting, and staying put is not a move") {
  CHECK(transition_allowed(State::serving, State::waiting));
  CHECK(transition_allowed(State::syncing, State::waiting));
  CHECK_FALSE(transition_allowed(State::serving, State::syncing));
  for (State s : kAll) CHECK_FALSE(transition_allowed(s, s));
}

TEST_CASE("every state has a name") {
  for (State s : kAll) CHECK(std::string(dp::recovery::to_string(s)) != "?");
}
