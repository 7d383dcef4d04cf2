// The file operations the log uses, behind an interface so tests can swap in
// a fault-injecting file system that forgets unsynced data (see
// tests/unit/log/fake_file_system.h).  Every call returns 0 or an errno
// value; none throws.  posix_file_system() is stateless and thread-safe; a
// FileSystem passed in LogOptions must outlive the log and be thread-safe
// (the committer threads, several at once, and the helper that prepares
// spare segments call it).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dp::log {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual int make_dirs(const std::string& dir) = 0;
  virtual int list_dir(const std::string& dir, std::vector<std::string>* names) = 0;
  // Opens read-write; creates the file when `create`.  *fd is a handle for
  // the calls below (a real fd for the POSIX file system).
  virtual int open(const std::string& path, bool create, int* fd) = 0;
  virtual int close(int fd) = 0;
  // Writes all of iov or fails (a short write is reported as ENOSPC).
  virtual int pwritev(int fd, const struct iovec* iov, int iovcnt, uint64_t offset) = 0;
  // Reads up to n bytes; *got < n only at end of file.
  virtual int pread(int fd, void* buf, size_t n, uint64_t offset, size_t* got) = 0;
  virtual int file_size(int fd, uint64_t* size) = 0;
  virtual int fdatasync(int fd) = 0;
  virtual int fsync_dir(const std::string& dir) = 0;
  virtual int rename(const std::string& from, const std::string& to) = 0;
  virtual int unlink(const std::string& path) = 0;
};

FileSystem* posix_file_system();

// Helpers over any FileSystem.
std::string errno_text(int err);  // "EIO (Input/output error)"
int write_zeros(FileSystem* fs, int fd, uint64_t from, uint64_t to);
int read_file(FileSystem* fs, const std::string& path, std::string* out);

}  // namespace dp::log
