// A file with given contents under $TMPDIR (or /tmp), removed on destruction.
#pragma once

#include <cstdlib>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace dp::config::test {

class TempFile {
 public:
  TempFile(const std::string& contents, const std::string& suffix = "") {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/dp-config-test-XXXXXX" + suffix;
    int fd = mkstemps(path_.data(), static_cast<int>(suffix.size()));
    if (fd < 0) {
      path_.clear();
      return;
    }
    size_t done = 0;
    while (done < contents.size()) {
      ssize_t n = write(fd, contents.data() + done, contents.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(fd);
  }
  ~TempFile() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The repository root, from DP_TEST_DATA ("<repo>/tests/data"; that folder
// need not exist, so strip the text rather than resolve "..").
inline std::string repo_root() {
  std::string data = DP_TEST_DATA;
  const std::string tail = "/tests/data";
  if (data.size() >= tail.size() && data.compare(data.size() - tail.size(), tail.size(), tail) == 0)
    data.resize(data.size() - tail.size());
  return data;
}

}  // namespace dp::config::test
