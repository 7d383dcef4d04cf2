// The replica handshake of ReplicaLink (replica_link.h has the diagram):
// the command sent at each step and what each answer means.  In a file of
// its own to keep replica_link.cc to the connection, the RDB and the stream.
#include "proxy/base/decimal.h"
#include "proxy/base/logger.h"
#include "proxy/upstream/replica_link.h"

namespace dp::upstream {

namespace {

// A reply as the server wrote it, for messages: "+OK", "-ERR ...".
std::string reply_line(const resp::Value& v) {
  switch (v.type) {
    case resp::Value::Type::simple: return "+" + v.str;
    case resp::Value::Type::error: return "-" + v.str;
    default: return v.is_string() ? v.str : std::string("(a reply that is not a line)");
  }
}
}  // namespace

void ReplicaLink::send_step() {
  switch (step_) {
    case Step::auth:
      if (opts_.username.empty()) {
        send_command({"AUTH", opts_.password});
      } else {
        send_command({"AUTH", opts_.username, opts_.password});
      }
      break;
    case Step::ping: send_command({"PING"}); break;
    case Step::setname: send_command({"CLIENT", "SETNAME", opts_.client_name}); break;
    case Step::info: send_command({"INFO", "server"}); break;
    case Step::port:
      if (opts_.listening_port == 0) {
        step_ = Step::capa;
        send_step();
        return;
      }
      send_command({"REPLCONF", "listening-port", std::to_string(opts_.listening_port)});
      break;
    case Step::capa: send_command({"REPLCONF", "capa", "eof", "capa", "psync2"}); break;
    case Step::version:
      if (replconf_version_.empty()) {
        step_ = Step::psync;
        send_step();
        return;
      }
      send_command({"REPLCONF", "version", replconf_version_});
      break;
    case Step::psync:
      send_command({"PSYNC", psync_replid_,
                    psync_replid_ == "?" ? std::string("-1") : std::to_string(psync_offset_ + 1)});
      break;
  }
}

void ReplicaLink::handle_reply(const resp::Value& reply) {
  const bool ok = reply.type == resp::Value::Type::simple;
  const std::string line = reply_line(reply);
  switch (step_) {
    case Step::auth:
      if (!ok)
        return drop("AUTH" + (opts_.username.empty() ? "" : " as user '" + opts_.username + "'") +
                    " failed: " + line);
      step_ = Step::ping;
      break;
    case Step::ping:
      if (!ok) return drop("PING failed: " + line);
      step_ = !opts_.client_name.empty() ? Step::setname : Step::info;
      break;
    case Step::setname:
      // A refusal (an ACL without client|setname) costs only the name.
      if (!ok)
        LOG_WARN("replica_link", "%sCLIENT SETNAME refused (%s); the link stays unnamed", where().c_str(),
                 line.c_str());
      step_ = Step::info;
      break;
    case Step::info:
      if (reply.type == resp::Value::Type::bulk) {
        fack_ = info_server_has_fack(reply.str);
        replconf_version_ = info_server_replconf_version(reply.str);
      } else {
        // An error (e.g. ACL denies INFO): assume an old server, no FACK.
        LOG_WARN("replica_link", "%sINFO server refused (%s); sending ACK without FACK", where().c_str(),
                 line.c_str());
      }
      step_ = Step::port;
      break;
    case Step::port:
    case Step::capa:
    case Step::version:
      // Older servers may not know these options; the replica carries on.
      if (!ok) LOG_WARN("replica_link", "%sREPLCONF refused: %s", where().c_str(), line.c_str());
      step_ = step_ == Step::port ? Step::capa : step_ == Step::capa ? Step::version : Step::psync;
      break;
    case Step::psync:
      return handle_psync_reply(reply);
  }
  send_step();
}

void ReplicaLink::handle_psync_reply(const resp::Value& reply) {
  const uint64_t gen = generation_;
  const std::string line = reply_line(reply);
  std::string_view text = reply.type == resp::Value::Type::simple ? std::string_view(reply.str) : "";
  if (text.substr(0, 11) == "FULLRESYNC ") {
    auto rest = text.substr(11);
    auto sp = rest.find(' ');
    uint64_t off = 0;
    if (sp == std::string_view::npos || !parse_u64(rest.substr(sp + 1), &off))
      return drop("protocol error: bad PSYNC reply '" + line + "'");
    std::string replid(rest.substr(0, sp));
    received_offset_ = off;
    stream_flowing_ = false;
    rdb_.reset();
    set_state(LinkState::receiving_rdb);
    if (gen == generation_) listener_->on_full_resync(replid, off);
    return;
  }
  if (text == "CONTINUE" || text.substr(0, 9) == "CONTINUE ") {
    // psync2 servers always name their replid; report it only when it changed.
    std::string new_replid(text.size() > 9 ? text.substr(9) : std::string_view());
    if (new_replid == psync_replid_) new_replid.clear();
    received_offset_ = psync_offset_;
    stream_flowing_ = true;
    set_state(LinkState::streaming);
    if (gen == generation_) listener_->on_continue(new_replid);
    if (gen == generation_) send_ack();
    return;
  }
  // -NOMASTERLINK, -LOADING, -ERR ...: the owner retries later.
  drop("PSYNC " + psync_replid_ + " " +
       (psync_replid_ == "?" ? std::string("-1") : std::to_string(psync_offset_ + 1)) + " refused: " + line);
}

}  // namespace dp::upstream
