#include "fake_file_system.h"

#include <cerrno>
#include <cstring>

namespace dp::log::test {
namespace {
std::string parent_of(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? "." : path.substr(0, s);
}
}  // namespace

FakeFileSystem::Image FakeFileSystem::image_locked(bool tear, uint32_t seed) {
  std::mt19937 rng(seed);
  Image img;
  for (auto& [path, f] : durable_names_) {
    std::string out = f->synced;
    if (tear) {
      constexpr size_t kSector = 512;
      if (f->data.size() > out.size()) out.resize(f->data.size(), '\0');
      for (size_t s = 0; s < f->data.size(); s += kSector) {
        size_t n = std::min(kSector, f->data.size() - s);
        bool differs = s + n > f->synced.size() || f->data.compare(s, n, f->synced, s, n) != 0;
        if (differs && (rng() & 1)) out.replace(s, n, f->data, s, n);
      }
    }
    img[path] = std::move(out);
  }
  return img;
}

FakeFileSystem::Image FakeFileSystem::crash_image(bool tear, uint32_t seed) {
  std::lock_guard<std::mutex> g(mu_);
  return image_locked(tear, seed);
}

void FakeFileSystem::reboot(const Image& image) {
  std::lock_guard<std::mutex> g(mu_);
  names_.clear();
  durable_names_.clear();
  fds_.clear();
  for (auto& [path, data] : image) {
    auto f = std::make_shared<File>(File{data, data});
    names_[path] = f;
    durable_names_[path] = f;
  }
  crash_at_ = 0;
  taken_.reset();
  ops_ = 0;
}

void FakeFileSystem::crash_after(uint64_t n, bool tear, uint32_t seed) {
  std::lock_guard<std::mutex> g(mu_);
  crash_at_ = n;
  crash_tear_ = tear;
  crash_seed_ = seed;
  taken_.reset();
  ops_ = 0;
}

std::optional<FakeFileSystem::Image> FakeFileSystem::taken_image() {
  std::lock_guard<std::mutex> g(mu_);
  return taken_;
}

void FakeFileSystem::mutated() {
  uint64_t n = ++ops_;
  if (crash_at_ != 0 && n == crash_at_) {
    taken_ = image_locked(crash_tear_, crash_seed_);
    if (at_crash) at_crash();
  }
}

std::string FakeFileSystem::contents(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = names_.find(path);
  return it == names_.end() ? std::string() : it->second->data;
}

void FakeFileSystem::set_contents(const std::string& path, const std::string& data, bool synced) {
  std::lock_guard<std::mutex> g(mu_);
  auto& f = names_[path];
  if (!f) f = std::make_shared<File>();
  f->data = data;
  if (synced) {
    f->synced = data;
    durable_names_[path] = f;
  }
}

bool FakeFileSystem::exists(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  return names_.count(path) != 0;
}

int FakeFileSystem::make_dirs(const std::string&) { return 0; }

int FakeFileSystem::list_dir(const std::string& dir, std::vector<std::string>* names) {
  std::lock_guard<std::mutex> g(mu_);
  names->clear();
  for (auto& [path, f] : names_)
    if (parent_of(path) == dir) names->push_back(path.substr(dir.size() + 1));
  return 0;
}

int FakeFileSystem::open(const std::string& path, bool create, int* fd) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = names_.find(path);
  if (it == names_.end()) {
    if (!create) return ENOENT;
    it = names_.emplace(path, std::make_shared<File>()).first;
    mutated();
  }
  *fd = next_fd_++;
  fds_[*fd] = it->second;
  return 0;
}

int FakeFileSystem::close(int fd) {
  std::lock_guard<std::mutex> g(mu_);
  return fds_.erase(fd) ? 0 : EBADF;
}

int FakeFileSystem::pwritev(int fd, const struct iovec* iov, int iovcnt, uint64_t offset) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return EBADF;
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  if (write_budget.load() >= 0) {
    if (static_cast<int64_t>(total) > write_budget.load()) return ENOSPC;
    write_budget -= static_cast<int64_t>(total);
  }
  ++it->second->writes;
  std::string& d = it->second->data;
  if (d.size() < offset + total) d.resize(offset + total, '\0');
  for (int i = 0; i < iovcnt; ++i) {
    std::memcpy(d.data() + offset, iov[i].iov_base, iov[i].iov_len);
    offset += iov[i].iov_len;
  }
  mutated();
  return 0;
}

int FakeFileSystem::pread(int fd, void* buf, size_t n, uint64_t offset, size_t* got) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return EBADF;
  const std::string& d = it->second->data;
  *got = offset >= d.size() ? 0 : std::min<size_t>(n, d.size() - offset);
  if (*got) std::memcpy(buf, d.data() + offset, *got);
  return 0;
}

int FakeFileSystem::file_size(int fd, uint64_t* size) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return EBADF;
  *size = it->second->data.size();
  return 0;
}

void FakeFileSystem::hold_syncs(bool on) {
  std::lock_guard<std::mutex> g(mu_);
  hold_ = on;
  if (on) return;
  for (auto& h : held_) h->done = true;
  held_.clear();
  held_cv_.notify_all();
}

size_t FakeFileSystem::held_syncs() {
  std::lock_guard<std::mutex> g(mu_);
  return held_.size();
}

void FakeFileSystem::finish_sync(size_t index, int rc) {
  std::lock_guard<std::mutex> g(mu_);
  if (index >= held_.size()) return;
  held_[index]->done = true;
  held_[index]->rc = rc;
  held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(index));
  held_cv_.notify_all();
}

int FakeFileSystem::fdatasync(int fd) {
  std::unique_lock<std::mutex> lk(mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return EBADF;
  if (fail_sync.load()) return EIO;
  std::shared_ptr<File> f = it->second;
  std::string covered = f->data;  // what an fdatasync started now covers
  const uint64_t writes = f->writes;
  if (hold_) {
    auto h = std::make_shared<Held>();
    held_.push_back(h);
    held_cv_.wait(lk, [&] { return h->done; });
    if (h->rc != 0) {
      ++completed_syncs_;
      return h->rc;
    }
  }
  if (writes >= f->synced_writes) {  // an earlier one finishing late syncs nothing more
    f->synced = std::move(covered);
    f->synced_writes = writes;
  }
  mutated();
  ++completed_syncs_;
  return 0;
}

int FakeFileSystem::fsync_dir(const std::string& dir) {
  std::lock_guard<std::mutex> g(mu_);
  if (fail_sync.load()) return EIO;
  for (auto it = durable_names_.begin(); it != durable_names_.end();)
    it = parent_of(it->first) == dir ? durable_names_.erase(it) : std::next(it);
  for (auto& [path, f] : names_)
    if (parent_of(path) == dir) durable_names_[path] = f;
  mutated();
  return 0;
}

int FakeFileSystem::rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = names_.find(from);
  if (it == names_.end()) return ENOENT;
  names_[to] = it->second;
  names_.erase(from);
  mutated();
  return 0;
}

int FakeFileSystem::unlink(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  if (names_.erase(path) == 0) return ENOENT;
  mutated();
  return 0;
}

}  // namespace dp::log::test
