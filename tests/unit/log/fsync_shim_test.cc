// tests/tools/libfsyncshim.c preloaded into a tiny program (Debian's
// python3 calling write + fdatasync), one behaviour per test.
#include <doctest/doctest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

std::string shim_path() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "";
  exe[n] = '\0';
  return (fs::path(exe).parent_path() / "libfsyncshim.so").string();
}

// The program: write one byte to `file`, fdatasync it; exit status = errno.
const char* kProgram =
    "import os, sys\n"
    "try:\n"
    "    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)\n"
    "    os.write(fd, b'x')\n"
    "    os.fdatasync(fd)\n"
    "except OSError as e:\n"
    "    sys.exit(e.errno)\n";

struct Sandbox {
  fs::path root;
  Sandbox() {
    char t[] = "/tmp/dp-shim-test-XXXXXX";
    root = mkdtemp(t);
    fs::create_directories(root / "ctl");
    fs::create_directories(root / "data");
  }
  ~Sandbox() { fs::remove_all(root); }
  void touch(const std::string& name) { std::ofstream(root / "ctl" / name).put('1'); }
};

pid_t spawn(const std::string& file, const std::vector<std::string>& env_extra) {
  std::vector<std::string> env = {"LD_PRELOAD=" + shim_path()};
  env.insert(env.end(), env_extra.begin(), env_extra.end());
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string py = "/usr/bin/python3", dash_c = "-c", prog = kProgram, f = file;
  char* argv[] = {py.data(), dash_c.data(), prog.data(), f.data(), nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, py.c_str(), nullptr, nullptr, argv, envp.data()) != 0) return -1;
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int run(const std::string& file, const std::vector<std::string>& env) {
  return wait_exit(spawn(file, env));
}

}  // namespace

TEST_CASE("fsync shim: the shared object was built beside the tests") {
  INFO("build target fsyncshim first: " << shim_path());
  REQUIRE(fs::exists(shim_path()));
}

TEST_CASE("fsync shim: without a control file fdatasync succeeds") {
  Sandbox s;
  CHECK(run((s.root / "data/f").string(), {"DP_FSYNC_CONTROL_DIR=" + (s.root / "ctl").string()}) == 0);
}

TEST_CASE("fsync shim: a fail file makes fdatasync return EIO") {
  Sandbox s;
  s.touch("fail");
  CHECK(run((s.root / "data/f").string(), {"DP_FSYNC_CONTROL_DIR=" + (s.root / "ctl").string()}) == EIO);
}

TEST_CASE("fsync shim: an enospc file makes writes to regular files fail with ENOSPC") {
  Sandbox s;
  s.touch("enospc");
  CHECK(run((s.root / "data/f").string(), {"DP_FSYNC_CONTROL_DIR=" + (s.root / "ctl").string()}) == ENOSPC);
}

TEST_CASE("fsync shim: files outside DP_FSYNC_PATH_PREFIX are left alone") {
  Sandbox s;
  s.touch("fail");
  std::vector<std::string> env = {"DP_FSYNC_CONTROL_DIR=" + (s.root / "ctl").string(),
                                  "DP_FSYNC_PATH_PREFIX=" + (s.root / "data/aof").string()};
  CHECK(run((s.root / "data/other").string(), env) == 0);
  CHECK(run((s.root / "data/aof-1").string(), env) == EIO);
}

TEST_CASE("fsync shim: DP_FSYNC_DELAY_US delays each fdatasync") {
  Sandbox s;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(run((s.root / "data/f").string(), {"DP_FSYNC_DELAY_US=300000"}) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(300));
}

TEST_CASE("fsync shim: a block file holds fdatasync until it is removed") {
  Sandbox s;
  s.touch("block");
  pid_t pid = spawn((s.root / "data/f").string(), {"DP_FSYNC_CONTROL_DIR=" + (s.root / "ctl").string()});
  REQUIRE(pid > 0);
  // Negative proof: it does not exit while the block file exists.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  int status = 0;
  CHECK(waitpid(pid, &status, WNOHANG) == 0);  // still blocked
  fs::remove(s.root / "ctl/block");
  CHECK(wait_exit(pid) == 0);
}
