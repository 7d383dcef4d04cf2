// DurableLog implementation: the producer-side queue and the committer
// threads that turn it into group commits (one pwritev + one fdatasync per
// batch).  Longer than STYLE.md's ~500 lines on purpose: the committers, the
// segment roll and the history reset share one write lock and the rules of
// what may be in flight around it; kept in one file, they read together.
//
//   producer (loop thread)          committer k (one of fsync_overlap)
//   append/reset/set_replid ──▶ queue_ ─swap─▶ frames ─▶ pwritev ─┬ write_mu_
//                                              fdatasync(fd k) ◀──┘ released
//                                              durable_ = max(durable_, end) + on_durable()
//
// One committer at a time holds write_mu_: it takes the queue, writes the
// batch and releases the lock before its fdatasync, so the next committer
// can write the next batch and start its own fdatasync while the first is
// in flight.  An fdatasync covers every page written before it started, so
// a committer publishes the end it wrote, whichever finishes first; the
// durable offset only moves forward (max).  What touches more than the
// current segment's tail (a roll, a reset) first waits until no fdatasync
// is in flight.
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "log/durable_log.h"
#include "log/history_reset.h"
#include "log/recovery.h"
#include "log/segment.h"

namespace dp::log {
namespace {

using namespace format;

constexpr const char* kSpareName = "spare.tmp";
constexpr const char* kNewSegmentName = "segment.tmp";
constexpr int kSpinUs = 50;
constexpr uint32_t kSpinRetry = 16;

struct Op {
  enum Kind { data, replid, reset, drop } kind;
  std::string bytes;    // data payload or replid
  uint64_t offset = 0;  // reset: new end; drop: threshold
};

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

class LogImpl final : public DurableLog {
 public:
  LogImpl(const LogOptions& opts, FileSystem* fs, RecoveredLog rec)
      : opts_(opts), fs_(fs), recovery_(rec.info), seg_fds_(std::max<uint32_t>(opts.fsync_overlap, 1), -1) {
    replid_ = rec.info.replid;
    start_ = rec.info.start_offset;
    end_ = rec.info.end_offset;
    durable_.store(end_);
    w_end_ = end_;
    w_replid_ = replid_;
    for (auto& s : rec.segments) w_segments_.emplace_back(s.first_offset, s.name);
    if (!rec.segments.empty()) {
      const SegmentInfo& last = rec.segments.back();
      seg_size_ = last.file_size;
      write_pos_ = last.write_pos;
      synced_pos_ = last.write_pos;  // recovery read it back from the file
    }
  }

  std::string start() {
    if (!w_segments_.empty()) {
      if (std::string err = open_segment(w_segments_.back().second); !err.empty()) return err;
      // Recovery read the tail back from the file, which may be the page
      // cache of a process that died before its fdatasync: make it durable
      // before the log reports it so (earlier segments were synced before
      // the roll to the next one).
      if (int rc = fs_->fdatasync(seg_fds_[0]))
        return "log: fdatasync of " + opts_.dir + "/" + w_segments_.back().second + " at open failed: " +
               errno_text(rc);
    }
    for (size_t k = 0; k < seg_fds_.size(); ++k)
      committers_.emplace_back([this, k] { committer_main(k); });
    return "";
  }

  ~LogImpl() override {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : committers_) t.join();
    if (preparer_.joinable()) preparer_.join();
    close_segment();
  }

  const RecoveryInfo& recovery() const override { return recovery_; }

  void append(std::string_view bytes) override {
    if (bytes.empty()) return;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!queue_.empty() && queue_.back().kind == Op::data)
        queue_.back().bytes.append(bytes);
      else
        queue_.push_back(Op{Op::data, std::string(bytes), 0});
      end_ += bytes.size();
      queued_.fetch_add(1, std::memory_order_release);
      if (!writer_waiting_) return;  // the writer will look at the queue anyway
    }
    cv_.notify_one();
  }

  void reset(const std::string& replid, uint64_t offset) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      queue_.push_back(Op{Op::reset, replid, offset});
      queued_.fetch_add(1, std::memory_order_release);
      ++generation_;
      // Offsets of the new history must not be compared with the old one's.
      if (durable_.load() > offset) durable_.store(offset);
      replid_ = replid;
      start_ = end_ = offset;
    }
    cv_.notify_one();
  }

  void set_replid(const std::string& replid) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      queue_.push_back(Op{Op::replid, replid, 0});
      queued_.fetch_add(1, std::memory_order_release);
      replid_ = replid;
    }
    cv_.notify_one();
  }

  std::string replid() const override { return replid_; }
  uint64_t start_offset() const override { return start_; }
  uint64_t end_offset() const override { return end_; }
  uint64_t durable_offset() const override { return durable_.load(std::memory_order_acquire); }
  uint64_t unsynced_bytes() const override {
    uint64_t d = durable_offset();
    return end_ > d ? end_ - d : 0;
  }
  bool failed() const override { return failed_.load(std::memory_order_acquire); }
  std::string failure_reason() const override {
    std::lock_guard<std::mutex> g(mu_);
    return failure_;
  }

  void drop_below(uint64_t offset) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      queue_.push_back(Op{Op::drop, {}, offset});
      queued_.fetch_add(1, std::memory_order_release);
      start_ = std::max(start_, std::min(offset, end_));
    }
    cv_.notify_one();
  }

  Stats stats() const override {
    Stats s;
    s.fsyncs = fsyncs_.load();
    s.bytes_written = bytes_written_.load();
    s.batches = batches_.load();
    s.last_fsync_ns = last_fsync_ns_.load();
    return s;
  }

 private:
  // ---- committer threads ----

  // A written group whose fdatasync is still to be done (or, with fd < 0,
  // only a durable end to report: a batch that ended with a reset).
  struct Commit {
    int fd = -1;
    std::string path;
    uint64_t end = 0;  // stream end once the group is synced
    uint64_t pos = 0;  // segment position just past the group
    uint64_t gen = 0;  // generation_ when its batch was taken
    uint64_t t_write = 0, stream_bytes = 0;
  };

  void committer_main(size_t slot) {
    std::vector<Op> batch;
    for (;;) {
      std::unique_lock<std::mutex> w(write_mu_);
      spin_for_work();
      {
        std::unique_lock<std::mutex> lk(mu_);
        writer_waiting_ = true;
        cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        writer_waiting_ = false;
        if (queue_.empty()) return;  // stop_ and drained
        if (opts_.commit_delay_us > 0 && !stop_) {
          lk.unlock();
          std::this_thread::sleep_for(std::chrono::microseconds(opts_.commit_delay_us));
          lk.lock();
        }
        batch.swap(queue_);
        taken_queued_ = queued_.load(std::memory_order_relaxed);
        taken_gen_ = generation_;
        ++in_flight_;
      }
      Commit c;
      bool ok = !failed() && process(batch, slot, &c);
      batch.clear();
      w.unlock();
      if (ok && (c.fd < 0 || sync(c))) publish(c);
      end_commit();
    }
  }

  // A producer waiting for durability usually appends again within a few
  // microseconds; polling briefly saves a futex sleep + wake per commit.
  // Where it does not (one client at a time: the next write comes only
  // after this one's reply), polling is CPU spent for nothing, so after a
  // miss only every kSpinRetry-th commit polls until one finds work again.
  // (Under write_mu_: one committer at a time.)
  void spin_for_work() {
    if (!spin_found_ && ++spin_skipped_ % kSpinRetry != 0) return;
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinUs);
    bool found = false;
    while (!(found = queued_.load(std::memory_order_acquire) != taken_queued_) &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    spin_found_ = found;
  }

  // Writes the batch.  Groups before a reset or drop are synced here; the
  // last group is left in *c for the caller to sync outside write_mu_.
  // Without one, *c only reports what this batch made durable itself (not
  // w_end_: another committer's group may still be syncing).
  bool process(std::vector<Op>& batch, size_t slot, Commit* c) {
    std::vector<const Op*> group;
    uint64_t synced_end = 0;
    auto flush = [&]() -> bool {
      if (group.empty()) return true;
      bool ok = write_group(group, slot, c) && sync(*c);
      group.clear();
      if (ok) synced_end = c->end;
      return ok;
    };
    for (const Op& op : batch) {
      switch (op.kind) {
        case Op::data:
        case Op::replid:
          group.push_back(&op);
          break;
        case Op::reset:
          if (!flush() || !do_reset(op)) return false;
          synced_end = op.offset;
          break;
        case Op::drop:
          if (!flush() || !do_drop(op.offset)) return false;
          break;
      }
    }
    if (!group.empty()) return write_group(group, slot, c);
    *c = Commit{};
    c->end = synced_end;
    c->gen = taken_gen_;
    return true;
  }

  // The fdatasync of a written group; poisons the log when it fails.
  bool sync(const Commit& c) {
    const uint64_t t0 = now_ns();
    if (int rc = fs_->fdatasync(c.fd)) {
      fail("log: fdatasync of " + c.path + " failed: " + errno_text(rc));
      return false;
    }
    const uint64_t t1 = now_ns();
    last_fsync_ns_.store(t1 - t0, std::memory_order_relaxed);
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    if (opts_.on_commit) opts_.on_commit(t1 - c.t_write, c.stream_bytes);
    return true;
  }

  void publish(const Commit& c) {
    bool moved = false;
    {
      std::lock_guard<std::mutex> g(mu_);
      // A failure of an overlapping fdatasync poisons this one too (its
      // success may not cover pages whose write-back error went to the
      // other).  A reset queued after this batch was taken starts a new
      // history: do not report this history's end as its progress.
      if (!failed_.load() && generation_ == c.gen) {
        if (c.fd >= 0 && c.pos > synced_pos_) synced_pos_ = c.pos;
        if (durable_.load() < c.end) {
          durable_.store(c.end, std::memory_order_release);
          moved = true;
        }
      }
    }
    if (moved && opts_.on_durable) opts_.on_durable();
  }

  void set_synced_pos(uint64_t pos) {
    std::lock_guard<std::mutex> g(mu_);
    synced_pos_ = pos;
  }
  void end_commit() {
    {
      std::lock_guard<std::mutex> g(mu_);
      --in_flight_;
    }
    idle_cv_.notify_all();
  }
  // Waits until no other committer's fdatasync is in flight (the caller's
  // own commit is counted once); false when one of them failed.
  bool wait_idle() {
    std::unique_lock<std::mutex> lk(mu_);
    idle_cv_.wait(lk, [&] { return in_flight_ <= 1; });
    return !failed_.load();
  }

  // Filled in below.
  bool write_group(const std::vector<const Op*>& group, size_t slot, Commit* c);
  std::string open_segment(const std::string& name);
  void close_segment();
  bool do_reset(const Op& op);
  bool do_drop(uint64_t offset);
  bool roll(uint64_t need);
  void maybe_prepare_spare();
  bool take_spare(uint64_t size);
  void fail(std::string reason);

  LogOptions opts_;
  FileSystem* fs_;
  RecoveryInfo recovery_;

  std::mutex write_mu_;  // held by the committer that takes and writes a batch
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;  // in_flight_ dropped
  int in_flight_ = 0;                // committers between taking a batch and publishing it
  std::vector<Op> queue_;
  bool stop_ = false;
  bool writer_waiting_ = false;
  std::atomic<uint64_t> queued_{0};  // ops queued so far; lets the writer poll without the lock
  uint64_t generation_ = 0;  // bumped by reset()
  std::string failure_;
  // producer view (written under mu_ by the producer; read by it only)
  std::string replid_;
  uint64_t start_ = 0, end_ = 0;

  std::atomic<uint64_t> durable_{0};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> fsyncs_{0}, bytes_written_{0}, batches_{0}, last_fsync_ns_{0};

  // Position in the current segment up to which a completed fdatasync
  // covered it (under mu_; reset with the segment while nothing is in flight).
  uint64_t synced_pos_ = 0;

  // committer holding write_mu_ only
  uint64_t taken_gen_ = 0;  // generation_ when the current batch was taken
  uint64_t taken_queued_ = 0;  // queued_ then: more means work is waiting
  bool spin_found_ = true;     // the last spin_for_work() found work (under write_mu_)
  uint32_t spin_skipped_ = 0;
  // The current segment, opened once per committer: a write-back error is
  // reported to every open file, so overlapping fdatasyncs each see it
  // (one shared file would report it to only the first).  [0] also writes.
  std::vector<int> seg_fds_;
  uint64_t seg_size_ = 0, write_pos_ = 0, w_end_ = 0;
  std::string w_replid_;
  std::vector<std::pair<uint64_t, std::string>> w_segments_;
  std::thread preparer_;
  std::atomic<bool> spare_ready_{false};
  std::string spare_error_;  // written by preparer before spare_ready_/join
  std::vector<std::thread> committers_;
};


bool LogImpl::write_group(const std::vector<const Op*>& group, size_t slot, Commit* c) {
  uint64_t need = 0;
  for (const Op* op : group) need += kFrameHeaderSize + op->bytes.size();
  if (seg_fds_[0] < 0 || write_pos_ + need > seg_size_) {
    if (!roll(need)) return false;
  }
  auto synced_now = [&] {
    std::lock_guard<std::mutex> g(mu_);
    return synced_pos_;
  };
  uint64_t synced = synced_now();
  // How far back the segment was known durable: recovery may find this
  // group intact behind a torn one that was still being synced (FORMAT.md).
  // The field cannot say more than kMaxSyncBack, and a smaller value would
  // claim bytes durable that are not: past it, wait for the fdatasyncs in
  // flight first (then everything written before is durable).
  if (write_pos_ - std::min(synced, write_pos_) > kMaxSyncBack) {
    if (!wait_idle()) return false;
    synced = synced_now();
  }
  if (write_pos_ - std::min(synced, write_pos_) > kMaxSyncBack) {
    // Still behind (a group that reported only its own part): sync here.
    const std::string path = opts_.dir + "/" + w_segments_.back().second;
    if (int rc = fs_->fdatasync(seg_fds_[slot])) {
      fail("log: fdatasync of " + path + " failed: " + errno_text(rc));
      return false;
    }
    synced = write_pos_;
  }
  const auto sync_back = static_cast<uint32_t>(write_pos_ - std::min(synced, write_pos_));
  std::vector<std::array<unsigned char, kFrameHeaderSize>> headers(group.size());
  std::vector<struct iovec> iov;
  iov.reserve(group.size() * 2);
  uint64_t back = 0, end = w_end_;
  for (size_t i = 0; i < group.size(); ++i) {
    const Op& op = *group[i];
    FrameHeader h;
    h.type = op.kind == Op::data ? FrameType::data : FrameType::replid;
    h.first_offset = end;
    h.length = static_cast<uint32_t>(op.bytes.size());
    h.batch_back = static_cast<uint32_t>(back);
    h.sync_back = sync_back;
    encode_frame_header(h, op.bytes, headers[i].data());
    iov.push_back({headers[i].data(), kFrameHeaderSize});
    iov.push_back({const_cast<char*>(op.bytes.data()), op.bytes.size()});
    back += kFrameHeaderSize + op.bytes.size();
    if (op.kind == Op::data) end += op.bytes.size();
  }
  const std::string path = opts_.dir + "/" + w_segments_.back().second;
  c->t_write = now_ns();
  if (int rc = fs_->pwritev(seg_fds_[0], iov.data(), static_cast<int>(iov.size()), write_pos_)) {
    fail("log: write of " + std::to_string(need) + " bytes to " + path + " at byte " +
         std::to_string(write_pos_) + " failed: " + errno_text(rc));
    return false;
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
  bytes_written_.fetch_add(need, std::memory_order_relaxed);
  c->fd = seg_fds_[slot];
  c->path = path;
  c->stream_bytes = end - w_end_;
  c->end = end;
  c->gen = taken_gen_;
  write_pos_ += need;
  c->pos = write_pos_;
  w_end_ = end;
  for (const Op* op : group)
    if (op->kind == Op::replid) w_replid_ = op->bytes;
  maybe_prepare_spare();
  return true;
}

// Opens `name` in dir once per committer, closing the previous segment.
// Only while no fdatasync is in flight.
std::string LogImpl::open_segment(const std::string& name) {
  const std::string path = opts_.dir + "/" + name;
  std::vector<int> fds(seg_fds_.size(), -1);
  for (int& fd : fds) {
    if (int rc = fs_->open(path, false, &fd)) {
      for (int f : fds)
        if (f >= 0) fs_->close(f);
      return "log: cannot open " + path + ": " + errno_text(rc);
    }
  }
  close_segment();
  seg_fds_ = std::move(fds);
  return "";
}

void LogImpl::close_segment() {
  for (int& fd : seg_fds_) {
    if (fd >= 0) fs_->close(fd);
    fd = -1;
  }
}

void LogImpl::maybe_prepare_spare() {
  if (spare_ready_.load() || preparer_.joinable() || write_pos_ < seg_size_ / 2) return;
  preparer_ = std::thread([this] {
    spare_error_ = create_segment_file(fs_, opts_.dir, kSpareName, opts_.segment_bytes, nullptr);
    spare_ready_.store(spare_error_.empty());
  });
}

// Waits for the helper; true when a spare of at least `size` bytes exists.
bool LogImpl::take_spare(uint64_t size) {
  if (preparer_.joinable()) preparer_.join();
  if (!spare_ready_.load() || size > opts_.segment_bytes) return false;
  spare_ready_.store(false);
  return true;
}

bool LogImpl::roll(uint64_t need) {
  // The old segment must be durable before the new one exists (only the
  // last segment may be torn), and its files stay open until then.
  if (!wait_idle()) return false;
  uint64_t size = std::max<uint64_t>(opts_.segment_bytes, kSegmentHeaderSize + need);
  SegmentHeader h{w_end_, w_replid_};
  std::string name = segment_name(w_end_);
  std::string tmp = take_spare(size) ? kSpareName : kNewSegmentName;
  std::string err = tmp == kSpareName
                        ? write_segment_header(fs_, opts_.dir + "/" + tmp, h)
                        : create_segment_file(fs_, opts_.dir, tmp, size, &h);
  if (tmp == kSpareName) size = opts_.segment_bytes;
  if (err.empty()) {
    if (int rc = fs_->rename(opts_.dir + "/" + tmp, opts_.dir + "/" + name))
      err = "log: rename to " + opts_.dir + "/" + name + " failed: " + errno_text(rc);
    else if (int rc2 = fs_->fsync_dir(opts_.dir))
      err = "log: fsync of directory " + opts_.dir + " failed: " + errno_text(rc2);
  }
  if (err.empty()) err = open_segment(name);
  if (!err.empty()) {
    fail(err);
    return false;
  }
  seg_size_ = size;
  write_pos_ = kSegmentHeaderSize;
  set_synced_pos(kSegmentHeaderSize);
  // A batch too big for a segment that holds nothing yet replaces it under
  // the same name (same first offset): keep one entry, or drop_below()
  // would unlink the name twice.
  if (!w_segments_.empty() && w_segments_.back().first == w_end_)
    w_segments_.back().second = name;
  else
    w_segments_.emplace_back(w_end_, name);
  return true;
}

bool LogImpl::do_reset(const Op& op) {
  if (!wait_idle()) return false;  // nothing syncs the files about to go
  close_segment();
  SegmentHeader h{op.offset, op.bytes};
  bool spare = take_spare(opts_.segment_bytes);
  std::string err = install_history(fs_, opts_.dir, h, opts_.segment_bytes, spare ? kSpareName : "");
  if (err.empty()) err = open_segment(segment_name(op.offset));
  if (!err.empty()) {
    fail(err);
    return false;
  }
  seg_size_ = opts_.segment_bytes;
  write_pos_ = kSegmentHeaderSize;
  set_synced_pos(kSegmentHeaderSize);
  w_end_ = op.offset;
  w_replid_ = op.bytes;
  w_segments_.assign(1, {op.offset, segment_name(op.offset)});
  return true;
}

bool LogImpl::do_drop(uint64_t offset) {
  size_t n = 0;
  while (n + 1 < w_segments_.size() && w_segments_[n + 1].first <= offset) ++n;
  if (n == 0) return true;
  for (size_t i = 0; i < n; ++i) {
    std::string path = opts_.dir + "/" + w_segments_[i].second;
    if (int rc = fs_->unlink(path)) {
      fail("log: unlink of " + path + " failed: " + errno_text(rc));
      return false;
    }
  }
  w_segments_.erase(w_segments_.begin(), w_segments_.begin() + static_cast<ptrdiff_t>(n));
  if (int rc = fs_->fsync_dir(opts_.dir)) {
    fail("log: fsync of directory " + opts_.dir + " failed: " + errno_text(rc));
    return false;
  }
  return true;
}

void LogImpl::fail(std::string reason) {
  {
    std::lock_guard<std::mutex> g(mu_);
    failure_ = std::move(reason);
    failed_.store(true, std::memory_order_release);
  }
  if (opts_.on_durable) opts_.on_durable();
}

}  // namespace

std::unique_ptr<DurableLog> DurableLog::open(const LogOptions& opts, std::string* error) {
  FileSystem* fs = opts.file_system ? opts.file_system : posix_file_system();
  if (opts.dir.empty()) {
    *error = "log: no log directory configured";
    return nullptr;
  }
  std::string ckpt = (opts.checkpoint_dir.empty() ? opts.dir : opts.checkpoint_dir) + "/" +
                     format::kCheckpointSubdir;
  RecoveredLog rec;
  std::string err = recover_log(fs, opts.dir, ckpt, opts.segment_bytes, &rec);
  if (!err.empty()) {
    *error = err;
    return nullptr;
  }
  auto log = std::make_unique<LogImpl>(opts, fs, std::move(rec));
  if (err = log->start(); !err.empty()) {
    *error = err;
    return nullptr;
  }
  return log;
}

}  // namespace dp::log
