// The names the proxy's own upstream connections give themselves with
// CLIENT SETNAME (deploy/acl.conf grants client|setname for it), so an
// operator can tell them apart from client sessions in CLIENT LIST.  Client
// sessions are never named by the proxy (their own CLIENT SETNAME passes
// through).
#pragma once

namespace dp {

// Control link: ROLE probes, INFO, COMMAND, and the restore's REPLICAOF /
// CONFIG SET (restores use no other upstream connection).
inline constexpr const char* kControlLinkName = "durable-proxy-control";
// Replica link: PSYNC and the replication stream logged by the proxy.
inline constexpr const char* kReplicaLinkName = "durable-proxy-replica";
// The second replica connection that takes a checkpoint (full sync only).
inline constexpr const char* kCheckpointLinkName = "durable-proxy-checkpoint";
// A connection shared by client sessions (upstream.sharing: auto).  It never
// authenticates (it has a new connection's rights), so its SETNAME may be
// refused by the default user's ACL; the reply is not looked at.
inline constexpr const char* kSharedLinkName = "durable-proxy-shared";
// The pool's probe connection, once a second (session/shared_upstream.h); it
// sends its name in the same write as its other commands (kProbeRequest).

}  // namespace dp
