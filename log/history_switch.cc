#include "log/history_switch.h"

namespace dp::log {

std::unique_ptr<HistorySwitch> HistorySwitch::begin(CheckpointStore* store, DurableLog* log,
                                                    const std::string& replid, uint64_t offset,
                                                    std::string* error) {
  auto writer = store->begin(replid, offset, error);
  if (!writer) return nullptr;
  std::unique_ptr<HistorySwitch> s(new HistorySwitch);
  s->store_ = store;
  s->log_ = log;
  s->writer_ = std::move(writer);
  s->replid_ = replid;
  s->offset_ = offset;
  return s;
}

bool HistorySwitch::write(std::string_view rdb_bytes, std::string* error) {
  if (!writer_) {
    *error = "checkpoint: write after the history switch failed or committed";
    return false;
  }
  bytes_ += rdb_bytes.size();
  if (writer_->write(rdb_bytes, error)) return true;
  writer_.reset();  // removes the temp file: the old history stands
  return false;
}

bool HistorySwitch::commit(std::string* error) {
  if (!writer_) {
    *error = "checkpoint: commit after the history switch failed or committed";
    return false;
  }
  std::unique_ptr<CheckpointWriter> w = std::move(writer_);
  if (!w->commit(error)) return false;  // steps 1-2
  log_->reset(replid_, offset_);        // step 3
  store_->prune();                      // step 4
  return true;
}

}  // namespace dp::log
