#include "proxy/gate/stream_tracker.h"

#include <charconv>

#include "proxy/base/ascii.h"
#include "proxy/base/logger.h"

namespace dp {

using commands::Kind;
using commands::Special;
using commands::iequals;

namespace {
resp::RequestLimits stream_limits() {
  resp::RequestLimits l;
  l.max_bulk_len = 1ull << 40;  // the primary decides; never refuse its stream
  l.max_multibulk_len = 1ull << 32;
  l.max_inline_len = 1ull << 30;
  return l;
}
}  // namespace

StreamTracker::StreamTracker(gate::PendingKeys* pending, std::function<void()> on_getack)
    : pending_(pending), on_getack_(std::move(on_getack)), parser_(stream_limits()) {}

void StreamTracker::reset(uint64_t offset) {
  partial_.clear();
  partial_start_ = offset + 1;
  parser_.reset();
  db_ = 0;
  in_multi_ = false;
  multi_keys_.clear();
  multi_dbs_.clear();
  multi_all_ = false;
  broken_ = false;
}

void StreamTracker::feed(std::string_view bytes, uint64_t first_offset) {
  if (broken_ || !table_) return;
  std::string_view input = bytes;
  uint64_t base = first_offset;
  if (!partial_.empty()) {
    partial_.append(bytes);
    input = partial_.view();
    base = partial_start_;
  }
  size_t pos = 0;
  while (pos < input.size()) {
    resp::ParseStatus st = parser_.parse(input.substr(pos), &req_);
    if (st == resp::ParseStatus::incomplete) break;
    if (st == resp::ParseStatus::error) {
      // Cannot happen with a sane primary; stop tracking rather than guess.
      LOG_ERROR("stream", "replication stream unreadable at offset %llu: %s; direct writes are no longer tracked",
                static_cast<unsigned long long>(base + pos), parser_.error().c_str());
      broken_ = true;
      partial_.clear();
      return;
    }
    pos += req_.consumed;
    if (st == resp::ParseStatus::ok) on_command(req_, base + pos - 1);
  }
  if (!partial_.empty()) {
    partial_.consume(pos);
    partial_start_ = base + pos;
  } else if (pos < input.size()) {
    partial_.append(input.substr(pos));
    partial_start_ = base + pos;
  }
}

void StreamTracker::on_command(const resp::Request& req, uint64_t end_offset) {
  if (req.args.empty()) return;
  ++commands_;
  const auto& a = req.args;
  if (iequals(a[0], "replconf")) {
    if (a.size() >= 2 && iequals(a[1], "getack") && on_getack_) on_getack_();
    return;
  }
  if (iequals(a[0], "ping")) return;
  if (iequals(a[0], "select")) {
    int n = 0;
    if (a.size() > 1) {
      auto r = std::from_chars(a[1].data(), a[1].data() + a[1].size(), n);
      if (r.ec == std::errc()) db_ = n;
    }
    return;
  }
  if (iequals(a[0], "multi")) {
    in_multi_ = true;
    return;
  }
  if (iequals(a[0], "exec")) {
    in_multi_ = false;
    for (auto& [db, key] : multi_keys_) pending_->stream_key(db, key, end_offset);
    for (int db : multi_dbs_) pending_->stream_db(db, end_offset);
    if (multi_all_) pending_->stream_all(end_offset);
    multi_keys_.clear();
    multi_dbs_.clear();
    multi_all_ = false;
    return;
  }
  table_->classify(a, &cls_);
  // Everything in the stream changed data: reads do not appear, but treat
  // whatever appears as a write (a module's command may look like a read).
  auto add_key = [&](std::string_view k) {
    if (in_multi_) multi_keys_.emplace_back(db_, std::string(k));
    else pending_->stream_key(db_, k, end_offset);
  };
  auto add_db = [&](int db) {
    if (db < 0) return;
    if (in_multi_) multi_dbs_.push_back(db);
    else pending_->stream_db(db, end_offset);
  };
  // A keyless command that changes no key (PUBLISH, SPUBLISH, FUNCTION
  // LOAD/DELETE/FLUSH/RESTORE, CLUSTER SETSLOT: DbEffect::none in the
  // table) marks nothing: reads of keys must not wait for it (promise 2).
  // What it did change is read only by commands held anyway (FUNCTION
  // LIST/STATS/DUMP are keyspace reads, FCALL a write) or by FCALL_RO,
  // which waits on the pseudo key FUNCTION changes name
  // (commands::kFunctionLibrariesKey, marked below like a key).
  if (cls_.keys.empty() && !cls_.db_wide && !cls_.all_dbs && cls_.info != nullptr &&
      cls_.info->db_effect == commands::DbEffect::none)
    return;
  for (std::string_view k : cls_.keys) add_key(k);
  if (cls_.all_dbs) {
    if (in_multi_) multi_all_ = true;
    else pending_->stream_all(end_offset);
  }
  if (cls_.db_wide || (cls_.keys.empty() && !cls_.all_dbs)) add_db(db_);
  add_db(cls_.other_db);
  add_db(cls_.other_db2);
}

}  // namespace dp
