// ReplicaLink's choice of "REPLCONF ACK <o> FACK <o>" from an INFO server
// reply, for the servers the proxy supports (see COMPATIBILITY.md).
#include <doctest/doctest.h>

#include "proxy/upstream/replica_link.h"

using dp::upstream::info_server_has_fack;

TEST_CASE("FACK follows redis_version on Redis-compatible servers") {
  CHECK_FALSE(info_server_has_fack("# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n"));
  CHECK_FALSE(info_server_has_fack("# Server\r\nredis_version:6.2.14\r\n"));
  CHECK(info_server_has_fack("# Server\r\nredis_version:7.2.4\r\n"));
  CHECK(info_server_has_fack("# Server\r\nredis_version:10.0.0\r\n"));
  CHECK_FALSE(info_server_has_fack("# Server\r\nprocess_id:1\r\n"));
}

TEST_CASE("any Valkey gets FACK, whatever redis_version it reports") {
  // Valkey 8.0: redis_version frozen at 7.2.4, plus server_name/valkey_version.
  CHECK(info_server_has_fack(
      "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n"));
  // A Valkey that stopped reporting redis_version, or reported an old one.
  CHECK(info_server_has_fack("# Server\r\nserver_name:valkey\r\nvalkey_version:9.0.0\r\n"));
  CHECK(info_server_has_fack("# Server\r\nredis_version:7.0.0\r\nvalkey_version:9.0.0\r\n"));
  // A field name inside another field's value does not count.
  CHECK_FALSE(info_server_has_fack("# Server\r\nredis_version:7.0.15\r\nexecutable:/x/valkey_version:9\r\n"));
}

TEST_CASE("REPLCONF version: the upstream's own valkey_version, only on Valkey >= 8") {
  using dp::upstream::info_server_replconf_version;
  // Valkey 9.x picks the full sync's RDB version from it (RDB 11 without).
  CHECK(info_server_replconf_version(
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n") == "9.1.2");
  CHECK(info_server_replconf_version("# Server\r\nvalkey_version:8.0.1\r\n") == "8.0.1");
  // Redis and Valkey 7.2 answer the unknown option with an error: not sent.
  CHECK(info_server_replconf_version("# Server\r\nredis_version:7.0.15\r\n").empty());
  CHECK(info_server_replconf_version("# Server\r\nredis_version:7.2.4\r\nvalkey_version:7.2.8\r\n").empty());
  // What the server's version2num() rejects is not sent either.
  CHECK(info_server_replconf_version("# Server\r\nvalkey_version:9.1.2-rc1\r\n").empty());
  CHECK(info_server_replconf_version("# Server\r\nvalkey_version:9.1\r\n").empty());
  CHECK(info_server_replconf_version("# Server\r\nvalkey_version:256.0.0\r\n").empty());
  CHECK(info_server_replconf_version("# Server\r\nexecutable:/x/valkey_version:9.0.0\r\n").empty());
}
