// An in-memory FileSystem that knows what a power loss would keep: file
// contents written since the last fdatasync and directory entries changed
// since the last fsync of their directory are forgotten by crash_image().
// Faults: fsync failure (EIO), a write budget (ENOSPC), an automatic crash
// image taken after the N-th mutating operation, and held fdatasyncs the
// test finishes one by one, in any order, with success or an error.
// An fdatasync covers what the file held when it was called.  Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "log/file_system.h"

namespace dp::log::test {

class FakeFileSystem final : public FileSystem {
 public:
  struct File {
    std::string data, synced;
    uint64_t writes = 0, synced_writes = 0;  // pwritev calls so far; covered by `synced`
  };
  using Image = std::map<std::string, std::string>;  // path -> contents after a crash

  // Contents a crash now would leave.  With `tear`, each unsynced 512-byte
  // sector independently may or may not have reached the disk.
  Image crash_image(bool tear = false, uint32_t seed = 1);
  // Replaces everything with `image` (the machine came back).
  void reboot(const Image& image);
  // Takes crash_image(tear) automatically right after the n-th mutating call.
  void crash_after(uint64_t n, bool tear = false, uint32_t seed = 1);
  std::optional<Image> taken_image();
  // Called (under the file system's lock) when crash_after's image is taken:
  // the test records what it had been told was durable by then.
  std::function<void()> at_crash;
  uint64_t mutating_calls() const { return ops_.load(); }

  std::atomic<bool> fail_sync{false};            // fdatasync / fsync_dir -> EIO
  std::atomic<int64_t> write_budget{-1};         // bytes before ENOSPC; -1 = unlimited

  // While holding, every fdatasync takes what the file holds at the call,
  // then waits until finish_sync() lets it complete.  hold_syncs(false)
  // completes all waiting ones with success.
  void hold_syncs(bool on);
  size_t held_syncs();  // fdatasyncs waiting now
  // Completes the index-th waiting fdatasync (in call order): rc 0 makes
  // what it took durable (unless a later one already did more), else it
  // returns rc and syncs nothing.
  void finish_sync(size_t index, int rc = 0);
  uint64_t completed_syncs() const { return completed_syncs_.load(); }  // fdatasyncs returned

  // Test access to current contents (not what a crash keeps).
  std::string contents(const std::string& path);
  void set_contents(const std::string& path, const std::string& data, bool synced = true);
  bool exists(const std::string& path);

  int make_dirs(const std::string& dir) override;
  int list_dir(const std::string& dir, std::vector<std::string>* names) override;
  int open(const std::string& path, bool create, int* fd) override;
  int close(int fd) override;
  int pwritev(int fd, const struct iovec* iov, int iovcnt, uint64_t offset) override;
  int pread(int fd, void* buf, size_t n, uint64_t offset, size_t* got) override;
  int file_size(int fd, uint64_t* size) override;
  int fdatasync(int fd) override;
  int fsync_dir(const std::string& dir) override;
  int rename(const std::string& from, const std::string& to) override;
  int unlink(const std::string& path) override;

 private:
  void mutated();  // under mu_
  Image image_locked(bool tear, uint32_t seed);

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<File>> names_;          // now
  std::map<std::string, std::shared_ptr<File>> durable_names_;  // after last dir fsync
  std::map<int, std::shared_ptr<File>> fds_;
  int next_fd_ = 100;
  std::atomic<uint64_t> ops_{0};
  uint64_t crash_at_ = 0;
  bool crash_tear_ = false;
  uint32_t crash_seed_ = 1;
  std::optional<Image> taken_;
  struct Held {
    bool done = false;
    int rc = 0;
  };
  bool hold_ = false;
  std::vector<std::shared_ptr<Held>> held_;  // waiting, in call order
  std::condition_variable held_cv_;
  std::atomic<uint64_t> completed_syncs_{0};
};

}  // namespace dp::log::test
