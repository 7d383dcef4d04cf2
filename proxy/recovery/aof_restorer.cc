#include "proxy/recovery/aof_restorer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

#include "log/durable_log.h"
#include "proxy/base/ascii.h"
#include "proxy/base/logger.h"
#include "proxy/resp/request_parser.h"

namespace dp {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

// Whole-file write: create/truncate, write, fsync, close.
std::string write_file(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + path + ": " + errno_text(errno);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string e = "cannot write " + path + " at byte " + std::to_string(done) + ": " + errno_text(errno);
      ::close(fd);
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string e = "cannot fsync " + path + ": " + errno_text(errno);
    ::close(fd);
    return e;
  }
  ::close(fd);
  return "";
}

// An appending writer with a buffer, fsynced at the end.
class Appender {
 public:
  explicit Appender(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) error_ = "cannot create " + path_ + ": " + errno_text(errno);
  }
  ~Appender() {
    if (fd_ >= 0) ::close(fd_);
  }
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void append(std::string_view b) {
    if (!ok()) return;
    buf_.append(b);
    if (buf_.size() >= (1u << 20)) flush();
  }
  bool finish() {
    flush();
    if (ok() && ::fsync(fd_) != 0) error_ = "cannot fsync " + path_ + ": " + errno_text(errno);
    return ok();
  }

 private:
  void flush() {
    size_t done = 0;
    while (ok() && done < buf_.size()) {
      ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) error_ = "cannot write " + path_ + " at byte " + std::to_string(written_ + done) + ": " + errno_text(errno);
      else done += static_cast<size_t>(n);
    }
    written_ += done;
    buf_.clear();
  }
  std::string path_;
  int fd_ = -1;
  std::string buf_;
  uint64_t written_ = 0;
  std::string error_;
};

// Stream commands an AOF does not hold: the primary's keep-alive and
// replication chatter, and slot ownership, which is the cluster's now.
// (CLUSTER SYNCSLOTS of 9.x atomic slot migration stays: Valkey's own AOF
// holds it too.)
bool left_out(const resp::Request& r) {
  using commands::iequals;
  if (r.args.empty()) return true;
  if (iequals(r.args[0], "PING") || iequals(r.args[0], "REPLCONF")) return true;
  return iequals(r.args[0], "CLUSTER") && r.args.size() >= 2 && iequals(r.args[1], "SETSLOT");
}

bool is(const resp::Request& r, std::string_view name) {
  return r.args.size() == 1 && commands::iequals(r.args[0], name);
}

// Our own manifest (a proxy that stopped mid-restore left it): it names
// only this restorer's files.
bool our_manifest(const std::string& path, const AofRestorer::Files& f) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string want = "file " + f.base.substr(f.dir.size() + 1) + " seq 1 type b\n" + "file " +
                           f.incr.substr(f.dir.size() + 1) + " seq 1 type i\n";
  return in && text.str() == want;
}

std::string fsync_dir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    std::string e = "cannot fsync directory " + dir + ": " + errno_text(errno);
    if (dfd >= 0) ::close(dfd);
    return e;
  }
  ::close(dfd);
  return "";
}

uint64_t now_ms(uv_loop_t* loop) { return uv_now(loop); }

}  // namespace

bool aof_restore_marked(const std::string& log_dir, const std::string& run_id) {
  if (run_id.empty()) return false;
  std::ifstream in(log_dir + "/" + kAofRestoreMarker);
  std::string line;
  return in && std::getline(in, line) && line == run_id;
}

AofRestorer::Files AofRestorer::files(const std::string& aof_dir, const std::string& appendfilename) {
  Files f;
  f.dir = aof_dir;
  f.manifest = aof_dir + "/" + appendfilename + ".manifest";
  f.base = aof_dir + "/" + appendfilename + ".dp.base.rdb";
  f.incr = aof_dir + "/" + appendfilename + ".dp.incr.aof";
  return f;
}

std::string AofRestorer::write_aof(const Files& f, const std::string& checkpoint_path, const std::string& log_dir,
                                   uint64_t from, uint64_t to, uint64_t* stream_bytes, uint64_t* commands) {
  *stream_bytes = *commands = 0;
  if (::mkdir(f.dir.c_str(), 0755) != 0 && errno != EEXIST)
    return "cannot create the node's AOF directory " + f.dir + ": " + errno_text(errno);
  struct stat st {};
  if (::stat(f.manifest.c_str(), &st) == 0 && !our_manifest(f.manifest, f))
    return "the node's AOF directory already holds a manifest, " + f.manifest +
           ", not written by durable-proxy: move it away (the node runs with appendonly no, so it is not in use)";
  ::unlink(f.manifest.c_str());  // ours, from a restore that stopped: nothing loads the files below meanwhile
  // Whatever fails below leaves none of this restore's files behind.
  std::string err = write_parts(f, checkpoint_path, log_dir, from, to, stream_bytes, commands);
  if (!err.empty()) remove_aof(f);
  return err;
}

std::string AofRestorer::write_parts(const Files& f, const std::string& checkpoint_path, const std::string& log_dir,
                                     uint64_t from, uint64_t to, uint64_t* stream_bytes, uint64_t* commands) {
  // Base: the checkpoint's RDB, copied.
  {
    std::ifstream in(checkpoint_path, std::ios::binary);
    if (!in) return "cannot read checkpoint " + checkpoint_path + ": " + errno_text(errno);
    Appender out(f.base);
    std::string chunk(1 << 20, '\0');
    while (out.ok() && in) {
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      out.append(std::string_view(chunk.data(), static_cast<size_t>(in.gcount())));
    }
    if (in.bad()) return "cannot read checkpoint " + checkpoint_path + ": " + errno_text(errno);
    if (!out.finish()) return out.error();
  }
  // Increment: the log's whole commands after the checkpoint.  A command
  // cut at the log end (the upstream died mid-propagation) was never
  // acknowledged: it is left out, as a replica would stop before it.
  {
    Appender out(f.incr);
    resp::RequestLimits limits;
    limits.max_bulk_len = UINT64_MAX / 2;  // whatever the server propagated
    limits.max_multibulk_len = UINT64_MAX / 2;
    resp::RequestParser parser(limits);
    std::string carry;
    std::string parse_error;
    // A transaction is written once its EXEC is in: a log that ends inside
    // one (the node died mid-propagation; never acknowledged) leaves it out,
    // so the node loads a clean file.
    std::string multi;
    bool in_multi = false;
    uint64_t multi_commands = 0;
    uint64_t at = from;  // stream offset of carry[0] - 1
    std::string err = log::read_range(log_dir, from, to, [&](std::string_view chunk) {
      carry.append(chunk);
      size_t pos = 0;
      while (pos < carry.size()) {
        resp::Request req;
        resp::ParseStatus ps = parser.parse(std::string_view(carry).substr(pos), &req);
        if (ps == resp::ParseStatus::incomplete) break;
        if (ps == resp::ParseStatus::error) {
          parse_error = "the log's stream is not RESP at offset " + std::to_string(at + pos + 1);
          return false;
        }
        if (ps == resp::ParseStatus::ok && !left_out(req)) {
          const std::string_view bytes = std::string_view(carry).substr(pos, req.consumed);
          if (is(req, "MULTI")) in_multi = true;
          if (in_multi) {
            multi.append(bytes);
            ++multi_commands;
            if (is(req, "EXEC")) {
              out.append(multi);
              *commands += multi_commands;
              multi.clear();
              multi_commands = 0;
              in_multi = false;
            }
          } else {
            out.append(bytes);
            ++*commands;
          }
        }
        pos += req.consumed;
      }
      carry.erase(0, pos);
      at += pos;
      return out.ok();
    });
    if (!err.empty()) return "reading the log for the node's AOF: " + err;
    if (!parse_error.empty()) return parse_error;
    if (!out.finish()) return out.error();
    *stream_bytes = at - from - (in_multi ? multi.size() : 0);
  }
  // The manifest last: until it exists the node loads nothing of this.
  const std::string tmp = f.manifest + ".tmp";
  std::string text = "file " + f.base.substr(f.dir.size() + 1) + " seq 1 type b\n" + "file " +
                     f.incr.substr(f.dir.size() + 1) + " seq 1 type i\n";
  if (std::string e = write_file(tmp, text); !e.empty()) return e;
  if (::rename(tmp.c_str(), f.manifest.c_str()) != 0)
    return "cannot rename " + tmp + " to " + f.manifest + ": " + errno_text(errno);
  return fsync_dir(f.dir);
}

void AofRestorer::remove_aof(const Files& f) {
  if (f.dir.empty()) return;
  if (our_manifest(f.manifest, f)) ::unlink(f.manifest.c_str());  // first: a node started later loads nothing of it
  ::unlink((f.manifest + ".tmp").c_str());
  ::unlink(f.base.c_str());
  ::unlink(f.incr.c_str());
  ::rmdir(f.dir.c_str());  // only if empty: created for the restore
}

std::string write_cluster_node_id(const std::string& log_dir, const std::string& node_id) {
  const std::string path = log_dir + "/" + kClusterNodeIdFile;
  if (std::string e = write_file(path + ".tmp", node_id + "\n"); !e.empty()) return e;
  if (::rename((path + ".tmp").c_str(), path.c_str()) != 0)
    return "cannot rename " + path + ".tmp to " + path + ": " + errno_text(errno);
  return fsync_dir(log_dir);
}

std::string AofRestorer::write_marker(const std::string& log_dir, const std::string& run_id) {
  if (std::string e = write_file(log_dir + "/" + kAofRestoreMarker, run_id + "\n"); !e.empty()) return e;
  return fsync_dir(log_dir);
}

// ------------------------------------------------------------ the steps

struct AofRestorer::Job {
  uv_work_t req{};
  AofRestorer* owner;
  std::function<std::string()> work;
  std::function<void(const std::string&)> after;
  std::string result;
};

AofRestorer::AofRestorer(uv_loop_t* loop, upstream::ControlLink* control, AofRestoreOptions opts, Done done)
    : RestoreJob(control), loop_(loop), opts_(std::move(opts)), done_(std::move(done)) {}

AofRestorer::~AofRestorer() = default;

std::string AofRestorer::status() const {
  return "restoring the cluster node " + opts_.upstream_name + " by DEBUG LOADAOF from checkpoint " +
         std::to_string(opts_.checkpoint_offset) + " and the log up to " + std::to_string(opts_.end_offset) + ": " +
         phase_;
}

void AofRestorer::start() {
  started_ms_ = now_ms(loop_);
  phase_ = "reading the node's AOF settings";
  LOG_INFO("recovery", "%s", status().c_str());
  command({"CONFIG", "GET", "appendonly", "dir", "appenddirname", "appendfilename"},
          [this](const resp::Value* r, const std::string& err) { got_config(r, err); });
}

void AofRestorer::got_config(const resp::Value* r, const std::string& err) {
  if (!r) return fail("CONFIG GET appendonly dir appenddirname appendfilename: " + err);
  if (r->type == resp::Value::Type::error) return fail("CONFIG GET appendonly dir appenddirname appendfilename: " + r->str);
  std::string appendonly, dir, appenddirname, appendfilename;
  if (r->type == resp::Value::Type::array)
    for (size_t i = 0; i + 1 < r->elems.size(); i += 2) {
      const std::string& k = r->elems[i].str;
      const std::string& v = r->elems[i + 1].str;
      if (k == "appendonly") appendonly = v;
      else if (k == "dir") dir = v;
      else if (k == "appenddirname") appenddirname = v;
      else if (k == "appendfilename") appendfilename = v;
    }
  if (dir.empty() || appenddirname.empty() || appendfilename.empty())
    return fail("CONFIG GET did not name the node's dir, appenddirname and appendfilename (a server before 7.0 has "
                "no multi-part AOF)");
  if (appendonly != "no")
    return fail("the node runs with appendonly " + appendonly +
                ": its own AOF is its persistence, and a restore would replace it; durable-proxy expects "
                "appendonly no");
  const std::string base = opts_.node_data_dir.empty() ? dir : opts_.node_data_dir;
  files_ = files(base + "/" + appenddirname, appendfilename);
  phase_ = "writing " + files_.dir;
  LOG_INFO("recovery", "%s (node dir %s%s)", status().c_str(), dir.c_str(),
           opts_.node_data_dir.empty() ? "" : (", here " + opts_.node_data_dir + ": recovery.node_data_dir").c_str());
  if (opts_.on_status) opts_.on_status(status());
  Files f = files_;
  AofRestoreOptions o = opts_;
  auto bytes = std::make_shared<std::pair<uint64_t, uint64_t>>();
  run_job(
      [f, o, bytes] {
        return write_aof(f, o.checkpoint_path, o.log_dir, o.checkpoint_offset, o.end_offset, &bytes->first,
                         &bytes->second);  // removes its own files when it fails
      },
      [this, bytes](const std::string& e) {
        if (!e.empty()) return fail(e);
        files_written_ = true;
        stream_bytes_ = bytes->first;
        commands_ = bytes->second;
        load();
      });
}

void AofRestorer::run_job(std::function<std::string()> work, std::function<void(const std::string&)> after) {
  auto* job = new Job;
  job->req.data = job;
  job->owner = this;
  job->work = std::move(work);
  job->after = std::move(after);
  job_running_ = true;
  int rc = uv_queue_work(
      loop_, &job->req, [](uv_work_t* w) { static_cast<Job*>(w->data)->result = static_cast<Job*>(w->data)->work(); },
      [](uv_work_t* w, int status) {
        std::unique_ptr<Job> j(static_cast<Job*>(w->data));
        AofRestorer* self = j->owner;
        self->job_running_ = false;
        if (!self->life_.open()) {
          if (j->result.empty()) remove_aof(self->files_);  // written, never loaded
          return self->life_.finish();
        }
        j->after(status == 0 ? j->result : std::string("file work cancelled"));
      });
  if (rc != 0) {
    job_running_ = false;
    std::unique_ptr<Job> j(job);
    j->after(std::string("cannot start the file work: ") + uv_strerror(rc));
  }
}

void AofRestorer::load() {
  // Still the primary it was when the restore was decided (gossip may have
  // made it its replica's replica meanwhile: then its data is the new
  // primary's, and loading the log would fork it from its primary).
  phase_ = "checking the node is still a primary";
  command({"INFO", "replication"}, [this](const resp::Value* r, const std::string& err) {
    if (!r) return fail("INFO replication: " + err);
    if (r->type != resp::Value::Type::bulk) return fail("INFO replication: " + r->str);
    if (r->str.find("role:master") == std::string::npos)
      return fail("the node is no longer a primary (a replica took over its slots): nothing to restore into it");
    phase_ = "DEBUG LOADAOF (" + std::to_string(commands_) + " commands, " + std::to_string(stream_bytes_) +
             " stream bytes after the checkpoint)";
    LOG_INFO("recovery", "%s", status().c_str());
    if (opts_.on_status) opts_.on_status(status());
    loading_ = true;
    command({"DEBUG", "LOADAOF"}, [this](const resp::Value* r2, const std::string& err2) {
      loading_ = false;
      if (!r2) return fail("DEBUG LOADAOF: " + err2);
      if (r2->type == resp::Value::Type::error)
        return fail("DEBUG LOADAOF: " + r2->str +
                    (r2->str.find("DEBUG command not allowed") != std::string::npos
                         ? " (set enable-debug-command local on the node: the proxy restores a cluster node with it)"
                         : ""));
      remove_aof(files_);
      files_written_ = false;
      // Only now: the keys this node process holds are the log's, whole.
      if (std::string e = write_marker(opts_.log_dir, opts_.node_run_id); !e.empty())
        LOG_WARN("recovery", "%s: a proxy restarted before the new log history is durable will refuse the node's "
                 "keys (recovery.on_unknown_dataset)", e.c_str());
      resync_replicas();
    });
  });
}

void AofRestorer::resync_replicas() {
  // The node's replicas hold the empty dataset it came back with (or their
  // own): a new replid makes their next PSYNC a full sync of the restored data.
  phase_ = "DEBUG CHANGE-REPL-ID, CLIENT KILL TYPE replica";
  command({"DEBUG", "CHANGE-REPL-ID"}, [this](const resp::Value* r, const std::string& err) {
    if (!r) return fail("DEBUG CHANGE-REPL-ID: " + err);
    if (r->type == resp::Value::Type::error) return fail("DEBUG CHANGE-REPL-ID: " + r->str);
    command({"CLIENT", "KILL", "TYPE", "replica"}, [this](const resp::Value* r2, const std::string& err2) {
      if (!r2) return fail("CLIENT KILL TYPE replica: " + err2);
      if (r2->type == resp::Value::Type::error) return fail("CLIENT KILL TYPE replica: " + r2->str);
      finish(true, "");
    });
  });
}

void AofRestorer::abort(const std::string& why) { fail(why); }

void AofRestorer::fail(const std::string& why) {
  // (Not while the node may still read them: DEBUG LOADAOF in flight.)
  if (files_written_ && !job_running_ && !loading_) {
    remove_aof(files_);
    files_written_ = false;
  }
  finish(false, "restore of cluster node " + opts_.upstream_name + " failed: " + why);
}

void AofRestorer::finish(bool ok, const std::string& error) {
  if (!done_) return;
  RestoreResult res;
  res.ok = ok;
  res.error = error;
  res.bytes_sent = stream_bytes_;
  res.seconds = double(now_ms(loop_) - started_ms_) / 1000.0;
  Done d = std::move(done_);
  done_ = nullptr;
  d(res);
}

void AofRestorer::close(std::function<void()> on_closed) {
  if (!life_.begin_close(std::move(on_closed))) return;
  done_ = nullptr;
  forget_commands();
  if (job_running_) return;  // the job's after-callback finishes
  if (files_written_ && !loading_) remove_aof(files_);  // (loading: the next restore replaces our manifest)
  life_.finish();
}

}  // namespace dp
