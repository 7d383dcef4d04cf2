// durable-proxy: a transparent durability proxy for Valkey.
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "config/config.h"
#include "proxy/admin/checkpoint_command.h"
#include "proxy/app/effective_config.h"
#include "proxy/base/logger.h"
#include "proxy/app/proxy.h"

namespace {

// Each client costs two descriptors (client + upstream connection).
void raise_fd_limit(uint64_t max_clients) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t want = static_cast<rlim_t>(max_clients) * 2 + 256;
  if (rl.rlim_cur >= want) return;
  rlimit n = rl;
  n.rlim_cur = std::min(want, rl.rlim_max);
  setrlimit(RLIMIT_NOFILE, &n);
  if (n.rlim_cur < want)
    LOG_WARN("proxy", "open-file limit is %llu (hard limit %llu): about %llu clients fit, not listen.max_clients=%llu; "
             "raise the hard limit (ulimit -Hn / LimitNOFILE=)",
             static_cast<unsigned long long>(n.rlim_cur), static_cast<unsigned long long>(rl.rlim_max),
             static_cast<unsigned long long>((n.rlim_cur - 256) / 2), static_cast<unsigned long long>(max_clients));
}

// --checkpoint: the admin address and token come from the config file when
// there is one (the default proxy.yaml only if it exists), and from --admin.
int checkpoint_command(const dp::config::CommandLine& cl) {
  std::string source;
  dp::config::LoadResult lr = dp::config::load_for_command_line(cl, &source);
  if (!lr.config) {
    std::fprintf(stderr, "durable-proxy: %s\n", lr.error.c_str());
    return 2;
  }
  std::string out;
  int rc = dp::request_checkpoint(*lr.config, &out);
  std::fprintf(rc == dp::kCheckpointStarted ? stdout : stderr, "durable-proxy --checkpoint: %s\n", out.c_str());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  dp::config::CommandLine cl;
  std::string err = dp::config::parse_command_line(argc, argv, &cl);
  if (!err.empty()) {
    std::fprintf(stderr, "durable-proxy: %s\n%s", err.c_str(), dp::config::usage_text());
    return 2;
  }
  if (cl.help) {
    std::fputs(dp::config::usage_text(), stdout);
    return 0;
  }
  if (cl.version) {
    std::printf("durable-proxy %s\n", DP_VERSION);
    return 0;
  }
  if (cl.checkpoint) return checkpoint_command(cl);
  std::string source;
  dp::config::LoadResult lr = dp::config::load_for_command_line(cl, &source);
  if (!lr.config) {
    std::fprintf(stderr, "durable-proxy: %s\n", lr.error.c_str());
    return 2;
  }
  const dp::config::Config& cfg = *lr.config;
  if (cl.check_config) {
    std::printf("%s: OK\n%s\n", source.c_str(), dp::config::summary(cfg).c_str());
    return 0;
  }
  dp::LoggerOptions lo;
  dp::parse_log_level(cfg.log_level, &lo.level);
  lo.json = cfg.log_format == "json";
  lo.file = cfg.log_file;
  std::string lerr;
  if (!dp::logger_configure(lo, &lerr)) {
    std::fprintf(stderr, "durable-proxy: logging.file: %s\n", lerr.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  LOG_INFO("proxy", "durable-proxy %s starting (pid %d); config: %s; effective config: %s", DP_VERSION,
           static_cast<int>(getpid()), source.c_str(), dp::effective_config_line(cfg).c_str());
  raise_fd_limit(cfg.max_clients);
  dp::Proxy proxy(cfg);
  return proxy.run();
}
