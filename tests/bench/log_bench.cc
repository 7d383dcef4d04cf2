// Log micro-benchmark: what group commit buys.
//   (a) one producer appends a 100-byte record and waits until it is durable,
//       vs a raw loop of pwrite(100 bytes) + fdatasync into a zero-filled file;
//   (b) P producers (default 50) doing the same at once: appends are
//       serialised by a mutex (the log has one producer thread: the proxy's
//       loop), durability is shared by group commit.
//   --compare-overlap N also runs (b) with LogOptions::fsync_overlap N (1 =
//       one fdatasync at a time) beside the default, in the same run.
// Usage: log_bench [--dir DIR] [--records N] [--producers P] [--compare-overlap N]
// DIR must be on the disk under test (not tmpfs); default: ./log-bench.<pid>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "log/durable_log.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kRecord = 100;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

struct Summary {
  double secs = 0, p50 = 0, p99 = 0;
  uint64_t records = 0, fsyncs = 0;
  double rps() const { return records / secs; }
};

Summary summarize(std::vector<double>& lat, double secs, uint64_t fsyncs) {
  std::sort(lat.begin(), lat.end());
  Summary s;
  s.secs = secs;
  s.records = lat.size();
  s.fsyncs = fsyncs;
  if (!lat.empty()) {
    s.p50 = lat[lat.size() / 2];
    s.p99 = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  }
  return s;
}

void print(const char* name, const Summary& s) {
  std::printf("%-28s %8.0f rec/s %8.2f MB/s %8.0f fsync/s  batch %6.1f rec  p50 %7.1f us  p99 %7.1f us\n",
              name, s.rps(), s.rps() * kRecord / 1e6, s.fsyncs / s.secs,
              s.fsyncs ? double(s.records) / s.fsyncs : 0.0, s.p50, s.p99);
}

Summary raw_loop(const std::string& dir, uint64_t n) {
  std::string path = dir + "/raw.dat";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { std::perror(path.c_str()); std::exit(1); }
  std::vector<char> zeros(1 << 20, 0);
  uint64_t size = std::max<uint64_t>(n * kRecord, 1 << 20);
  for (uint64_t off = 0; off < size; off += zeros.size())
    if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) < 0) std::exit(1);
  ::fdatasync(fd);
  std::string rec(kRecord, 'r');
  std::vector<double> lat;
  lat.reserve(n);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    auto t = Clock::now();
    if (::pwrite(fd, rec.data(), kRecord, static_cast<off_t>(i * kRecord)) != (ssize_t)kRecord ||
        ::fdatasync(fd) != 0) {
      std::perror("raw write");
      std::exit(1);
    }
    lat.push_back(us_since(t));
  }
  double secs = us_since(t0) / 1e6;
  ::close(fd);
  ::unlink(path.c_str());
  return summarize(lat, secs, n);
}

// Wakes waiters when the log reports progress.
struct Durability {
  std::mutex mu;
  std::condition_variable cv;
  void notify() {
    std::lock_guard<std::mutex> g(mu);
    cv.notify_all();
  }
  void wait(const dp::log::DurableLog& log, uint64_t want) {
    // Like a busy event loop, look again for a moment before sleeping.
    auto until = Clock::now() + std::chrono::microseconds(100);
    while (log.durable_offset() < want && !log.failed() && Clock::now() < until)
      std::this_thread::yield();
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return log.durable_offset() >= want || log.failed(); });
  }
};

Summary log_run(const std::string& dir, int producers, uint64_t per_producer, uint32_t overlap = 0) {
  std::filesystem::remove_all(dir + "/log");
  Durability dur;
  dp::log::LogOptions o;
  o.dir = dir + "/log";
  if (overlap > 0) o.fsync_overlap = overlap;
  o.on_durable = [&] { dur.notify(); };
  std::string err;
  auto log = dp::log::DurableLog::open(o, &err);
  if (!log) { std::fprintf(stderr, "%s\n", err.c_str()); std::exit(1); }
  log->reset("bench", 0);
  dur.wait(*log, 0);
  std::mutex append_mu;  // the one producer thread of the real proxy
  std::vector<std::vector<double>> lat(producers);
  auto before = log->stats();
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::string rec(kRecord, static_cast<char>('a' + p % 26));
      lat[p].reserve(per_producer);
      for (uint64_t i = 0; i < per_producer; ++i) {
        auto t = Clock::now();
        uint64_t want;
        {
          std::lock_guard<std::mutex> g(append_mu);
          log->append(rec);
          want = log->end_offset();
        }
        dur.wait(*log, want);
        lat[p].push_back(us_since(t));
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = us_since(t0) / 1e6;
  if (log->failed()) { std::fprintf(stderr, "%s\n", log->failure_reason().c_str()); std::exit(1); }
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  uint64_t fsyncs = log->stats().fsyncs - before.fsyncs;
  log.reset();
  std::filesystem::remove_all(dir + "/log");
  return summarize(all, secs, fsyncs);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "./log-bench." + std::to_string(getpid());
  uint64_t records = 3000;
  int producers = 50;
  uint32_t compare_overlap = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--records")) records = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--producers")) producers = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--compare-overlap"))
      compare_overlap = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
    else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
  }
  std::filesystem::create_directories(dir);
  std::printf("log_bench: dir %s, %zu-byte records, %llu records per run, %d producers in (b)\n",
              dir.c_str(), kRecord, static_cast<unsigned long long>(records), producers);
  Summary raw = raw_loop(dir, records);
  print("raw write+fdatasync", raw);
  Summary a = log_run(dir, 1, records);
  print("(a) log, 1 producer", a);
  const uint64_t per_producer = std::max<uint64_t>(records * 4 / producers, 1);
  Summary b = log_run(dir, producers, per_producer);
  print("(b) log, producers", b);
  if (compare_overlap > 0) {
    Summary bo = log_run(dir, producers, per_producer, compare_overlap);
    std::string name = "(b) overlap " + std::to_string(compare_overlap);
    print(name.c_str(), bo);
    std::printf("(b) default / (b) overlap %u: records/s %.2fx, p50 %.2fx, p99 %.2fx\n", compare_overlap,
                b.rps() / bo.rps(), b.p50 / bo.p50, b.p99 / bo.p99);
  }
  std::printf("(a) p50 latency / raw p50: %.2fx (target <= 1.1)\n", a.p50 / raw.p50);
  std::printf("(b) records/s / (a) records/s: %.1fx (target >= 20); / raw: %.1fx\n",
              b.rps() / a.rps(), b.rps() / raw.rps());
  std::filesystem::remove_all(dir);
  return 0;
}
