// What an upstream's "INFO server" reply says it understands on the
// replica link: "REPLCONF ACK <o> FACK <o>" and "REPLCONF version".  See
// replica_link.h for why each matters.  Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace dp::upstream {

// The version to announce with "REPLCONF version" for an "INFO server"
// reply: its valkey_version when that is M.m.p with M >= 8, else "" (none).
std::string info_server_replconf_version(std::string_view info);

// True when an "INFO server" reply names a server that understands
// "REPLCONF ACK <o> FACK <o>": any Valkey (valkey_version / server_name),
// or redis_version >= 7.2.  Older servers ignore the FACK pair anyway.
bool info_server_has_fack(std::string_view info);

}  // namespace dp::upstream
