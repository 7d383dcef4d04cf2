#include <doctest/doctest.h>

#include "proxy/gate/pending_keys.h"

using dp::gate::PendingKeys;
using dp::gate::Token;

TEST_CASE("a forwarded write makes its key pending until its offset is durable") {
  PendingKeys pk;
  CHECK(pk.empty());
  Token t;
  pk.mark_key(&t, 0, "k");
  CHECK(pk.key_pending(0, "k"));
  CHECK_FALSE(pk.key_pending(0, "other"));
  CHECK_FALSE(pk.key_pending(1, "k"));  // same name, other db
  pk.resolve(std::move(t), 100);
  CHECK(pk.key_pending(0, "k"));
  pk.durable(99);
  CHECK(pk.key_pending(0, "k"));
  pk.durable(100);
  CHECK_FALSE(pk.key_pending(0, "k"));
  CHECK(pk.empty());
  CHECK(pk.key_count() == 0);
}

TEST_CASE("a key stays pending while any of its writes is unresolved or above durable") {
  PendingKeys pk;
  Token a, b;
  pk.mark_key(&a, 0, "k");
  pk.mark_key(&b, 0, "k");
  pk.resolve(std::move(a), 10);
  pk.durable(10);
  CHECK(pk.key_pending(0, "k"));  // b still unresolved
  pk.resolve(std::move(b), 20);
  CHECK(pk.key_pending(0, "k"));
  pk.durable(20);
  CHECK_FALSE(pk.key_pending(0, "k"));
}

TEST_CASE("resolving at an offset that is already durable settles at once") {
  PendingKeys pk;
  pk.durable(50);
  Token t;
  pk.mark_key(&t, 3, "x");
  pk.resolve(std::move(t), 40);
  CHECK_FALSE(pk.key_pending(3, "x"));
  CHECK(pk.empty());
}

TEST_CASE("an abandoned write (DISCARD) releases its marks") {
  PendingKeys pk;
  Token t;
  pk.mark_key(&t, 0, "k");
  pk.mark_db(&t, 2);
  CHECK(pk.db_pending(2));
  pk.abandon(std::move(t));
  CHECK_FALSE(pk.key_pending(0, "k"));
  CHECK_FALSE(pk.db_pending(2));
  CHECK(pk.empty());
}

TEST_CASE("a db-wide write makes every key of that db pending, and only that db") {
  PendingKeys pk;
  Token t;
  pk.mark_db(&t, 1);
  CHECK(pk.key_pending(1, "anything"));
  CHECK_FALSE(pk.key_pending(0, "anything"));
  pk.resolve(std::move(t), 5);
  CHECK(pk.key_pending(1, "anything"));
  pk.durable(5);
  CHECK_FALSE(pk.key_pending(1, "anything"));
  CHECK(pk.empty());
}

TEST_CASE("FLUSHALL makes every db pending") {
  PendingKeys pk;
  Token t;
  pk.mark_all(&t);
  CHECK(pk.key_pending(0, "a"));
  CHECK(pk.key_pending(7, "b"));
  CHECK(pk.db_pending(9));
  pk.resolve(std::move(t), 8);
  pk.durable(7);
  CHECK(pk.key_pending(5, "c"));
  pk.durable(8);
  CHECK_FALSE(pk.key_pending(5, "c"));
  CHECK(pk.empty());
}

TEST_CASE("stream-seen writes are pending until their stream offset is durable") {
  PendingKeys pk;
  pk.stream_key(0, "direct", 30);
  pk.stream_db(4, 31);
  CHECK(pk.key_pending(0, "direct"));
  CHECK(pk.key_pending(4, "x"));
  pk.durable(30);
  CHECK_FALSE(pk.key_pending(0, "direct"));
  CHECK(pk.key_pending(4, "x"));
  pk.durable(31);
  CHECK(pk.empty());
  pk.stream_key(0, "old", 31);  // already durable: not marked at all
  CHECK_FALSE(pk.key_pending(0, "old"));
}

TEST_CASE("a stream mark and a forwarded mark on one key: pending until both are settled") {
  PendingKeys pk;
  Token t;
  pk.mark_key(&t, 0, "k");
  pk.stream_key(0, "k", 12);
  pk.durable(12);
  CHECK(pk.key_pending(0, "k"));  // the forwarded one is unresolved
  pk.resolve(std::move(t), 15);
  pk.durable(15);
  CHECK_FALSE(pk.key_pending(0, "k"));
  CHECK(pk.key_count() == 0);
}

TEST_CASE("huge db numbers are treated as every db") {
  PendingKeys pk;
  Token t;
  pk.mark_key(&t, PendingKeys::kMaxDb + 1, "k");
  CHECK(t.all_dbs);
  CHECK(pk.key_pending(0, "z"));
  pk.resolve(std::move(t), 1);
  pk.durable(1);
  CHECK(pk.empty());
}

TEST_CASE("key_wait: nothing, an unknown offset, or the highest pending offset of the key") {
  PendingKeys pk;
  CHECK(pk.key_wait(0, "k") == 0);
  Token a, b;
  pk.mark_key(&a, 0, "k");
  CHECK(pk.key_wait(0, "k") == PendingKeys::kUnknown);  // in flight: offset not known yet
  CHECK(pk.key_wait(0, "other") == 0);
  pk.resolve(std::move(a), 100);
  CHECK(pk.key_wait(0, "k") == 100);
  pk.stream_key(0, "k", 120);
  CHECK(pk.key_wait(0, "k") == 120);
  pk.mark_key(&b, 0, "k");
  CHECK(pk.key_wait(0, "k") == PendingKeys::kUnknown);
  pk.resolve(std::move(b), 150);
  CHECK(pk.key_wait(0, "k") == 150);
  pk.durable(150);
  CHECK(pk.key_wait(0, "k") == 0);
}

TEST_CASE("key_wait: db-wide and all-db marks count for every key") {
  PendingKeys pk;
  Token d, all;
  pk.mark_db(&d, 1);
  CHECK(pk.key_wait(1, "k") == PendingKeys::kUnknown);
  CHECK(pk.key_wait(0, "k") == 0);
  pk.resolve(std::move(d), 40);
  CHECK(pk.key_wait(1, "k") == 40);
  pk.stream_all(70);
  CHECK(pk.key_wait(0, "k") == 70);
  CHECK(pk.key_wait(1, "k") == 70);
  pk.mark_all(&all);
  CHECK(pk.key_wait(2, "x") == PendingKeys::kUnknown);
  pk.resolve(std::move(all), 90);
  pk.durable(90);
  CHECK(pk.key_wait(1, "k") == 0);
}

TEST_CASE("the function libraries' pseudo key is server-wide: marked in one db, pending in every db") {
  dp::gate::PendingKeys pk;
  dp::gate::Token t;
  pk.mark_key(&t, 3, dp::commands::kFunctionLibrariesKey);
  CHECK(pk.key_pending(0, dp::commands::kFunctionLibrariesKey));
  CHECK(pk.key_pending(7, dp::commands::kFunctionLibrariesKey));
  CHECK_FALSE(pk.key_pending(3, "k"));
  pk.resolve(std::move(t), 10);
  pk.stream_key(5, dp::commands::kFunctionLibrariesKey, 20);
  CHECK(pk.key_wait(1, dp::commands::kFunctionLibrariesKey) == 20);
  pk.durable(20);
  CHECK_FALSE(pk.key_pending(5, dp::commands::kFunctionLibrariesKey));
  CHECK(pk.empty());
}
