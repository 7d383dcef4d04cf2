#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <algorithm>
#include <cstring>

#include "log/file_system.h"

namespace dp::log {
namespace {

class PosixFileSystem final : public FileSystem {
 public:
  int make_dirs(const std::string& dir) override {
    std::string cur;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      cur = dir.substr(0, pos);
      if (cur.empty()) continue;
      if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return errno;
    }
    return 0;
  }
  int list_dir(const std::string& dir, std::vector<std::string>* names) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return errno;
    names->clear();
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        names->emplace_back(e->d_name);
    }
    ::closedir(d);
    return 0;
  }
  int open(const std::string& path, bool create, int* fd) override {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    *fd = ::open(path.c_str(), flags, 0644);
    return *fd < 0 ? errno : 0;
  }
  int close(int fd) override { return ::close(fd) == 0 ? 0 : errno; }
  int pwritev(int fd, const struct iovec* iov, int iovcnt, uint64_t offset) override {
    // Copy so partial writes can be resumed without touching the caller's array.
    std::vector<struct iovec> v(iov, iov + iovcnt);
    size_t i = 0;
    auto off = static_cast<off_t>(offset);
    while (i < v.size()) {
      int n = static_cast<int>(std::min<size_t>(v.size() - i, IOV_MAX));
      ssize_t w = ::pwritev(fd, &v[i], n, off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (w == 0) return ENOSPC;
      off += w;
      auto left = static_cast<size_t>(w);
      while (i < v.size() && left >= v[i].iov_len) left -= v[i++].iov_len;
      if (i < v.size()) {
        v[i].iov_base = static_cast<char*>(v[i].iov_base) + left;
        v[i].iov_len -= left;
      }
    }
    return 0;
  }
  int pread(int fd, void* buf, size_t n, uint64_t offset, size_t* got) override {
    *got = 0;
    auto* p = static_cast<char*>(buf);
    while (*got < n) {
      ssize_t r = ::pread(fd, p + *got, n - *got, static_cast<off_t>(offset + *got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (r == 0) break;
      *got += static_cast<size_t>(r);
    }
    return 0;
  }
  int file_size(int fd, uint64_t* size) override {
    struct stat st;
    if (::fstat(fd, &st) != 0) return errno;
    *size = static_cast<uint64_t>(st.st_size);
    return 0;
  }
  int fdatasync(int fd) override { return ::fdatasync(fd) == 0 ? 0 : errno; }
  int fsync_dir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int rc = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return rc;
  }
  int rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  }
  int unlink(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 ? 0 : errno;
  }
};

}  // namespace

FileSystem* posix_file_system() {
  static PosixFileSystem fs;
  return &fs;
}

std::string errno_text(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name ? name : "errno " + std::to_string(err)) + " (" + std::strerror(err) + ")";
}

int write_zeros(FileSystem* fs, int fd, uint64_t from, uint64_t to) {
  static const std::vector<char> zeros(1 << 20, 0);
  while (from < to) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(to - from, zeros.size()));
    struct iovec iov{const_cast<char*>(zeros.data()), n};
    if (int rc = fs->pwritev(fd, &iov, 1, from)) return rc;
    from += n;
  }
  return 0;
}

int read_file(FileSystem* fs, const std::string& path, std::string* out) {
  int fd;
  if (int rc = fs->open(path, false, &fd)) return rc;
  uint64_t size = 0;
  int rc = fs->file_size(fd, &size);
  if (rc == 0) {
    out->resize(size);
    size_t got = 0;
    rc = fs->pread(fd, out->data(), size, 0, &got);
    out->resize(got);
  }
  fs->close(fd);
  return rc;
}

}  // namespace dp::log
