// Checkpoint store: RDB files written through a temp file, then published by
// rename + MANIFEST replacement.  Layout and rules: log/checkpoint_store.h,
// log/FORMAT.md.
#include "log/checkpoint_store.h"

#include <cstdio>
#include <mutex>
#include <vector>

#include "log/file_system.h"
#include "log/log_format.h"
#include "log/manifest.h"

namespace dp::log {
namespace {

// "<20-digit offset>.rdb"; `alt` gives "<20-digit offset>.b.rdb", used when
// the live checkpoint of another history holds the plain name (a rename
// over it would change what the current MANIFEST names before the switch).
std::string rdb_name(uint64_t offset, bool alt = false) {
  char buf[40];
  std::snprintf(buf, sizeof buf, alt ? "%020llu.b.rdb" : "%020llu.rdb", static_cast<unsigned long long>(offset));
  return buf;
}

bool is_rdb_name(const std::string& n) {
  return (n.size() == 24 && n.compare(20, 4, ".rdb") == 0) || (n.size() == 26 && n.compare(20, 6, ".b.rdb") == 0);
}

class StoreImpl;

class WriterImpl final : public CheckpointWriter {
 public:
  WriterImpl(StoreImpl* store, FileSystem* fs, std::string dir, std::string replid,
             uint64_t offset, int fd)
      : store_(store), fs_(fs), dir_(std::move(dir)), replid_(std::move(replid)),
        offset_(offset), fd_(fd), tmp_(dir_ + "/" + rdb_name(offset) + ".tmp") {
    buf_.reserve(kBuffer);
  }
  ~WriterImpl() override {
    if (fd_ >= 0) fs_->close(fd_);
    if (!committed_) fs_->unlink(tmp_);
  }
  bool write(std::string_view bytes, std::string* error) override {
    if (committed_ || fd_ < 0) return set(error, "checkpoint: write after commit or failure");
    buf_.append(bytes);
    return buf_.size() < kBuffer || flush(error);
  }
  bool commit(std::string* error) override;

 private:
  static constexpr size_t kBuffer = 1 << 20;
  static bool set(std::string* error, std::string text) {
    if (error) *error = std::move(text);
    return false;
  }
  bool flush(std::string* error) {
    struct iovec iov{buf_.data(), buf_.size()};
    if (int rc = fs_->pwritev(fd_, &iov, 1, size_)) {
      return set(error, "checkpoint: write to " + tmp_ + " at byte " + std::to_string(size_) +
                            " failed: " + errno_text(rc));
    }
    size_ += buf_.size();
    buf_.clear();
    return true;
  }

  StoreImpl* store_;
  FileSystem* fs_;
  std::string dir_, replid_;
  uint64_t offset_;
  int fd_;
  std::string tmp_;
  std::string buf_;
  uint64_t size_ = 0;
  bool committed_ = false;
};

class StoreImpl final : public CheckpointStore {
 public:
  StoreImpl(FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}

  std::string load() {
    if (int rc = fs_->make_dirs(dir_)) return "checkpoint: cannot create " + dir_ + ": " + errno_text(rc);
    std::vector<std::string> names;
    if (int rc = fs_->list_dir(dir_, &names)) return "checkpoint: cannot list " + dir_ + ": " + errno_text(rc);
    for (auto& n : names)
      if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0) fs_->unlink(dir_ + "/" + n);
    Manifest m;
    bool found = false;
    if (std::string err = read_manifest(fs_, dir_, &m, &found); !err.empty()) return err;
    if (!found) return "";
    CheckpointInfo info{m.replid, m.checkpoint_offset, dir_ + "/" + m.rdb_file, 0};
    int fd;
    if (int rc = fs_->open(info.path, false, &fd))
      return "checkpoint: " + dir_ + "/MANIFEST names " + info.path + ": " + errno_text(rc);
    fs_->file_size(fd, &info.size);
    fs_->close(fd);
    latest_ = info;
    return "";
  }

  std::optional<CheckpointInfo> latest() const override {
    std::lock_guard<std::mutex> g(mu_);
    return latest_;
  }

  std::unique_ptr<CheckpointWriter> begin(const std::string& replid, uint64_t offset,
                                          std::string* error) override {
    std::string tmp = dir_ + "/" + rdb_name(offset) + ".tmp";
    fs_->unlink(tmp);
    int fd;
    if (int rc = fs_->open(tmp, true, &fd)) {
      if (error) *error = "checkpoint: cannot create " + tmp + ": " + errno_text(rc);
      return nullptr;
    }
    return std::make_unique<WriterImpl>(this, fs_, dir_, replid, offset, fd);
  }

  void prune() override {
    std::optional<CheckpointInfo> newest = latest();
    if (!newest) return;
    std::vector<std::string> names;
    if (fs_->list_dir(dir_, &names) != 0) return;
    std::string keep = newest->path.substr(dir_.size() + 1);
    bool removed = false;
    for (auto& n : names) {
      if (is_rdb_name(n) && n != keep) {
        removed |= fs_->unlink(dir_ + "/" + n) == 0;
      }
    }
    if (removed) fs_->fsync_dir(dir_);
  }

  void published(const CheckpointInfo& info) {
    std::lock_guard<std::mutex> g(mu_);
    latest_ = info;
  }

 private:
  FileSystem* fs_;
  std::string dir_;
  mutable std::mutex mu_;  // guards latest_ only (see the header's thread rules)
  std::optional<CheckpointInfo> latest_;
};

bool WriterImpl::commit(std::string* error) {
  if (committed_ || fd_ < 0) return set(error, "checkpoint: commit twice or after failure");
  if (!buf_.empty() && !flush(error)) return false;
  int rc = fs_->fdatasync(fd_);
  fs_->close(fd_);
  fd_ = -1;
  if (rc != 0) return set(error, "checkpoint: fdatasync of " + tmp_ + " failed: " + errno_text(rc));
  std::string name = rdb_name(offset_);
  if (auto live = store_->latest(); live && live->path == dir_ + "/" + name && live->replid != replid_)
    name = rdb_name(offset_, true);
  std::string dst = dir_ + "/" + name;
  if ((rc = fs_->rename(tmp_, dst)))
    return set(error, "checkpoint: rename to " + dst + " failed: " + errno_text(rc));
  committed_ = true;  // the temp name is gone either way now
  if ((rc = fs_->fsync_dir(dir_)))
    return set(error, "checkpoint: fsync of directory " + dir_ + " failed: " + errno_text(rc));
  Manifest m{replid_, offset_, offset_, name};
  if (std::string err = write_manifest(fs_, dir_, m); !err.empty()) return set(error, err);
  store_->published(CheckpointInfo{replid_, offset_, dst, size_});
  return true;
}

}  // namespace

std::unique_ptr<CheckpointStore> CheckpointStore::open(const std::string& dir, FileSystem* fs,
                                                       std::string* error) {
  auto store = std::make_unique<StoreImpl>(fs ? fs : posix_file_system(),
                                           dir + "/" + format::kCheckpointSubdir);
  if (std::string err = store->load(); !err.empty()) {
    if (error) *error = err;
    return nullptr;
  }
  return store;
}

std::unique_ptr<CheckpointStore> CheckpointStore::open(const std::string& dir, std::string* error) {
  return open(dir, nullptr, error);
}

}  // namespace dp::log
