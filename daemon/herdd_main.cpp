// herdd: the herd daemon. Composition root: wires stores/, daemon/ and api/.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "api/metrics/registry.h"
#include "api/routes/daemon_routes.h"
#include "api/server/auth.h"
#include "api/server/builtin_routes.h"
#include "api/server/server.h"
#include "common/atomic_file.h"
#include "common/fd_limit.h"
#include "common/log.h"
#include "common/version.h"
#include "daemon/backup.h"
#include "daemon/idempotency.h"
#include "daemon/local_workers.h"
#include "daemon/orchestrator.h"
#include "daemon/reader.h"
#include "daemon/scheduler.h"
#include "stores/artifacts.h"
#include "stores/store.h"

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal = sig; }

// The herd-worker next to this binary (install layout) or in the build tree.
std::string FindWorkerBinary(const char* argv0) {
  std::error_code ec;
  fs::path self = fs::canonical("/proc/self/exe", ec);
  if (ec) self = fs::absolute(argv0);
  for (fs::path p : {self.parent_path() / "herd-worker", self.parent_path() / ".." / "workers" / "herd-worker"}) {
    if (fs::exists(p)) return fs::canonical(p).string();
  }
  return "herd-worker";
}

bool SplitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  try {
    int p = std::stoi(s.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host->empty();
}

int Fatal(const std::string& what) {
  spdlog::error("{}", what);
  return 1;
}

// The address local workers dial: loopback for a wildcard listen address
// (their TLS check needs a name the certificate can hold), bracketed IPv6.
std::string LocalDialAddress(const std::string& host, uint16_t port) {
  std::string h = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return h + ":" + std::to_string(port);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herdd: runs the Llama 3 post-training loop as a service"};
  app.set_version_flag("--version", std::string("herdd ") + herd::kVersion);
  std::string data_dir;
  std::string listen = "127.0.0.1:8080";
  int local_workers = 0;
  std::string auth_file;
  std::string local_worker_token_file;
  std::string worker_binary;
  std::string log_level = "info";
  int http_threads = 0;
  int64_t lease_ttl_ms = 15000;
  int64_t restart_grace_ms = 30000;
  int drain_s = 20;
  uint64_t min_free_disk_mb = 64;
  std::vector<std::string> worker_args;
  std::string restore_backup;
  std::string tls_cert, tls_key;
  herd::api::ServerOptions sopts;
  int64_t read_timeout_ms = sopts.read_timeout.count();
  int64_t write_timeout_ms = sopts.write_timeout.count();
  int64_t idle_timeout_ms = sopts.idle_timeout.count();
  app.add_option("--data-dir", data_dir, "RocksDB and artifact directory")->required();
  app.add_option("--restore-backup", restore_backup,
                 "restore this backup (POST /v1/backups) into a new --data-dir, then exit");
  app.add_option("--listen", listen, "HOST:PORT to serve the REST API on; port 0 picks one")
      ->capture_default_str();
  app.add_option("--local-workers", local_workers, "herd-worker processes to spawn on loopback")
      ->capture_default_str()->check(CLI::Range(0, 64));
  app.add_option("--auth-file", auth_file, "bearer tokens and roles (JSONL); required off loopback");
  auto* cert_opt =
      app.add_option("--tls-cert", tls_cert,
                     "serve HTTPS with this PEM certificate (then its chain); needs --tls-key. "
                     "Local workers trust it as their --ca-file");
  auto* key_opt = app.add_option("--tls-key", tls_key,
                                 "PEM private key of --tls-cert (unencrypted); needs --tls-cert");
  cert_opt->needs(key_opt);
  key_opt->needs(cert_opt);
  app.add_option("--local-worker-token-file", local_worker_token_file,
                 "token file the local workers use when --auth-file is set");
  app.add_option("--worker-binary", worker_binary, "herd-worker to spawn. Default: next to herdd");
  app.add_option("--worker-arg", worker_args, "extra argument for every local worker (repeatable)");
  app.add_option("--http-threads", http_threads,
                 "server threads. Default: 4 + 2 per local worker (long polls hold a thread)");
  app.add_option("--lease-ttl-ms", lease_ttl_ms, "lease expiry without heartbeat")->capture_default_str();
  app.add_option("--restart-grace-ms", restart_grace_ms,
                 "after a restart, how long leases wait for their workers to re-attach")
      ->capture_default_str();
  app.add_option("--drain-seconds", drain_s, "SIGTERM: how long requests in flight may take")
      ->capture_default_str();
  app.add_option("--min-free-disk-mb", min_free_disk_mb,
                 "free space kept on the data dir's filesystem: below it writes answer 503 (disk full) "
                 "and resume by themselves once space is freed; 0 = no check")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  // HTTP limits (docs/api.md "Server"). Sizes take units: 16KiB, 8MiB, 4GiB (KB = 1000).
  const auto size = CLI::AsSizeValue(true);
  const auto millis = CLI::Range(int64_t{1}, int64_t{86400000});
  app.add_option("--http-header-limit", sopts.header_limit,
                 "max bytes of request line + header fields (431 above)")
      ->transform(size)
      ->capture_default_str();
  app.add_option("--http-body-limit", sopts.body_limit,
                 "max body bytes of an ordinary route (413 above)")
      ->transform(size)
      ->capture_default_str();
  app.add_option("--http-upload-limit", sopts.stream_body_limit,
                 "max body bytes of a streamed upload (prompts, annotations; 413 above)")
      ->transform(size)
      ->capture_default_str();
  app.add_option("--http-read-timeout-ms", read_timeout_ms,
                 "deadline of a request's header, of a buffered body, of each upload chunk; "
                 "a slow sender is closed when it passes")
      ->capture_default_str()
      ->check(millis);
  app.add_option("--http-write-timeout-ms", write_timeout_ms,
                 "deadline of writing a response (of each streamed piece)")
      ->capture_default_str()
      ->check(millis);
  app.add_option("--http-idle-timeout-ms", idle_timeout_ms,
                 "how long a kept-alive connection may wait for its next request")
      ->capture_default_str()
      ->check(millis);
  app.add_option("--http-max-connections", sopts.max_connections,
                 "connections served at once; one more is answered 503 and closed "
                 "(lowered to fit the open-file limit)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
  CLI11_PARSE(app, argc, argv);

  try {
    herd::InitLogging("herdd", log_level);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herdd: %s\n", e.what());
    return 2;
  }
  if (!restore_backup.empty()) {
    auto info = herd::daemon::Backups::Restore(restore_backup, data_dir);
    if (!info.ok()) return Fatal("--restore-backup: " + info.status().ToString());
    spdlog::info("restored backup {} (taken at {} ms) into {}: database and {} artifact file(s), {} bytes",
                 info->dir, info->created_ms, data_dir, info->artifact_files, info->artifact_bytes);
    return 0;
  }
  // Every connection, table file and worker pipe is a descriptor: take the
  // hard limit, and keep the connection bound below what it leaves.
  const herd::FileLimit nofile = herd::RaiseFileLimit();
  if (!nofile.ok) {
    spdlog::warn("could not raise the open-file limit (soft {}, hard {})", nofile.soft,
                 nofile.hard);
  }
  if (int budget = herd::ConnectionBudget(nofile.soft, sopts.max_connections);
      budget < sopts.max_connections) {
    spdlog::warn(
        "--http-max-connections {} lowered to {}: the open-file limit is {} "
        "(raise LimitNOFILE / ulimit -n)",
        sopts.max_connections, budget, nofile.soft);
    sopts.max_connections = budget;
  }
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(listen, &host, &port)) return Fatal("--listen: expected HOST:PORT, got '" + listen + "'");
  if (auto s = herd::api::CheckListenAllowed(host, !auth_file.empty()); !s.ok()) {
    return Fatal("--listen: " + s.message());
  }
  std::unique_ptr<herd::api::Authenticator> auth;
  if (!auth_file.empty()) {
    auto a = herd::api::Authenticator::LoadFile(auth_file);
    if (!a.ok()) return Fatal("--auth-file: " + a.status().message());
    auth = std::make_unique<herd::api::Authenticator>(std::move(a).value());
    if (local_workers > 0 && local_worker_token_file.empty()) {
      return Fatal("--local-workers with --auth-file needs --local-worker-token-file");
    }
  }

  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return Fatal("--data-dir: cannot create '" + data_dir + "': " + ec.message());
  data_dir = fs::canonical(data_dir).string();

  herd::stores::StoreOptions so;
  so.data_dir = data_dir;
  so.min_free_bytes = min_free_disk_mb << 20;
  auto store = herd::stores::Store::Open(so);
  if (!store.ok()) return Fatal("opening the store in " + data_dir + ": " + store.status().ToString());
  herd::stores::ArtifactStore artifacts(data_dir + "/artifacts");

  herd::daemon::SystemClock clock;
  herd::daemon::RandomIdSource ids;
  herd::daemon::SchedulerOptions sched_opts;
  sched_opts.lease_ttl_ms = lease_ttl_ms;
  sched_opts.restart_grace_ms = restart_grace_ms;
  herd::daemon::Scheduler scheduler(&clock, &ids, sched_opts);
  herd::daemon::Orchestrator orch(store->get(), &artifacts, &scheduler, &clock);
  if (auto s = orch.Recover(); !s.ok()) return Fatal("recovering tasks: " + s.ToString());
  herd::daemon::Reader reader(store->get(), &scheduler);
  herd::daemon::IdempotencyLog idempotency(store->get());
  herd::daemon::Backups backups(store->get(), &artifacts);
  const herd::api::DaemonParts parts{&orch, &reader, &idempotency, &backups};

  herd::metrics::Registry registry;
  herd::api::Router router;
  std::atomic<bool> draining{false};
  auto ready = [&]() -> herd::Status {
    if (draining) return herd::Status::Unavailable("draining");
    return herd::Status::Ok();
  };
  if (auto s = herd::api::AddBuiltinRoutes(router, &registry, ready); !s.ok()) return Fatal(s.ToString());
  if (auto s = herd::api::AddDaemonRoutes(router, parts, &registry); !s.ok()) return Fatal(s.ToString());
  herd::api::AddDaemonMetrics(&registry, parts);

  sopts.host = host;
  sopts.port = port;
  sopts.threads = http_threads > 0 ? http_threads : 4 + 2 * local_workers;
  sopts.tls_cert_file = tls_cert;
  sopts.tls_key_file = tls_key;
  const bool tls = !tls_cert.empty();
  const std::string scheme = tls ? "https" : "http";
  sopts.read_timeout = std::chrono::milliseconds(read_timeout_ms);
  sopts.write_timeout = std::chrono::milliseconds(write_timeout_ms);
  sopts.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  herd::api::Server server(sopts, std::move(router), auth.get(), &registry);
  if (auto s = server.Start(); !s.ok()) {
    if (s.message().rfind("TLS ", 0) == 0) return Fatal("--tls-cert/--tls-key: " + s.message());
    return Fatal("--listen " + listen + ": " + s.ToString());
  }
  const std::string bound = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(server.port());
  const std::string local_dial = LocalDialAddress(host, server.port());
  if (local_workers > 0 && tls) {
    // Local workers verify the certificate like any client: fail now, not
    // in every worker's log.
    const std::string dial_host = local_dial.substr(0, local_dial.rfind(':'));
    auto named = herd::api::CertificateNamesHost(tls_cert, dial_host);
    if (!named.ok()) return Fatal("--tls-cert: " + named.status().message());
    if (!*named) {
      return Fatal("--local-workers with --tls-cert: local workers dial https://" + local_dial +
                   " but the certificate in '" + tls_cert + "' does not name " + dial_host +
                   " (add it to the certificate's subjectAltName, or --listen on a name the "
                   "certificate holds)");
    }
  }
  // Written atomically: a reader sees the old file or the whole new one.
  // host:port only, whatever the scheme (readers know how they started herdd).
  if (auto s = herd::WriteFileAtomic(data_dir + "/herdd.addr", bound + "\n"); !s.ok()) {
    spdlog::warn("{}", s.ToString());
  }
  spdlog::info("herdd {} serving on {}://{} data_dir={} schema={} max_connections={} open_file_limit={}",
               herd::kVersion, scheme, bound, data_dir, store.value()->schema_version(),
               sopts.max_connections, nofile.soft);
  if (auth && !tls && !herd::api::IsLoopbackHost(host)) {
    spdlog::warn(
        "INSECURE: herdd serves {} to the network over plain HTTP: bearer tokens (and all API "
        "traffic) travel in clear text, and anyone on the path can read and replay them. Serve "
        "HTTPS with --tls-cert FILE --tls-key FILE (docs/api.md, \"TLS\"), or listen on loopback "
        "behind a TLS proxy.",
        bound);
  }

  orch.StartBackground(500);

  std::unique_ptr<herd::daemon::LocalWorkers> workers;
  if (local_workers > 0) {
    herd::daemon::LocalWorkersOptions lw;
    lw.binary = worker_binary.empty() ? FindWorkerBinary(argv[0]) : worker_binary;
    lw.daemon_url = scheme + "://" + local_dial;
    // herdd's own certificate is the workers' trust anchor.
    if (tls) lw.ca_file = fs::absolute(tls_cert).string();
    lw.token_file = local_worker_token_file;
    lw.count = local_workers;
    lw.log_dir = data_dir + "/logs";
    lw.extra_args = worker_args;
    fs::create_directories(lw.log_dir, ec);
    workers = std::make_unique<herd::daemon::LocalWorkers>(lw);
    workers->Start();
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));

  // Drain: stop leasing (long polls return empty), let local workers stop
  // (their tasks in flight are requeued when their leases lapse after a
  // restart), finish requests in flight, exit 0.
  spdlog::info("signal {}: draining", g_signal.load());
  draining = true;
  scheduler.Shutdown();
  if (workers) workers->Stop();
  orch.StopBackground();
  server.Stop(std::chrono::seconds(drain_s));
  spdlog::info("herdd stopped");
  return 0;
}
