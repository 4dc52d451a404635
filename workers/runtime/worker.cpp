#include "workers/runtime/worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <thread>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "common/version.h"
#include "tasks/protocol.h"

namespace herd::worker {

using nlohmann::json;

void TaskContext::Report(json progress) {
  std::lock_guard<std::mutex> l(mu_);
  progress_ = std::move(progress);
  changed_ = true;
}

json TaskContext::TakeProgress(bool* changed) {
  std::lock_guard<std::mutex> l(mu_);
  *changed = changed_;
  changed_ = false;
  return progress_;
}

struct Worker::Impl {
  std::unique_ptr<api::HttpClient> client;     // lease loop and results
  std::unique_ptr<api::HttpClient> hb_client;  // heartbeat thread
  std::string worker_id;
};

Worker::Worker(WorkerOptions opts) : impl_(std::make_unique<Impl>()), opts_(std::move(opts)) {
  if (opts_.name.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    opts_.name = std::string(host) + "-" + std::to_string(getpid());
  }
  if (opts_.memory_bytes == 0) {
    opts_.memory_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  }
}

Worker::~Worker() = default;

void Worker::AddHandler(const std::string& kind, Handler h) { handlers_[kind] = std::move(h); }

Status Worker::Run() {
  api::ClientOptions co;
  co.base_url = opts_.daemon_url;
  co.token = opts_.token;
  co.ca_file = opts_.ca_file;
  co.timeout = std::chrono::milliseconds(opts_.lease_wait_ms + 30'000);
  HERD_ASSIGN_OR_RETURN(impl_->client, api::HttpClient::Create(co));
  co.timeout = std::chrono::milliseconds(10'000);
  HERD_ASSIGN_OR_RETURN(impl_->hb_client, api::HttpClient::Create(co));

  int64_t backoff = opts_.retry_ms;
  auto sleep_backoff = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff = std::min<int64_t>(backoff * 2, 30'000);
  };

  while (!stop_) {
    if (impl_->worker_id.empty()) {
      std::string kinds;
      for (const auto& [k, h] : handlers_) kinds += (kinds.empty() ? "" : ",") + k;
      auto r = api::SendJson(*impl_->client, "POST", "/v1/workers",
                             {{"name", opts_.name}, {"device", opts_.device},
                              {"memory_bytes", opts_.memory_bytes},
                              {"version", std::string(kVersion)}, {"kinds", kinds},
                              {"protocol", tasks::kProtocolVersion}});
      if (!r.ok()) {
        // A refused registration (bad field, another task protocol, auth)
        // will not pass by retrying.
        if (r.status().code() == Status::Code::kInvalidArgument ||
            r.status().code() == Status::Code::kAlreadyExists ||
            r.status().message().rfind("401", 0) == 0 || r.status().message().rfind("403", 0) == 0) {
          return r.status().WithContext("registering with " + opts_.daemon_url);
        }
        spdlog::warn("register failed: {}; retrying", r.status().ToString());
        sleep_backoff();
        continue;
      }
      const int theirs = r->contains("protocol") && (*r)["protocol"].is_number_integer()
                             ? (*r)["protocol"].get<int>()
                             : 0;
      HERD_RETURN_IF_ERROR(tasks::CheckProtocol(theirs, "herdd").WithContext("registering with " + opts_.daemon_url));
      impl_->worker_id = (*r)["worker"]["id"].get<std::string>();
      spdlog::info("registered worker={} name={} device={}", impl_->worker_id, opts_.name, opts_.device);
      backoff = opts_.retry_ms;
    }

    auto resp = impl_->client->Request(
        "POST", "/v1/workers/" + impl_->worker_id + "/lease?wait=" + std::to_string(opts_.lease_wait_ms) + "ms",
        "{}");
    if (!resp.ok()) {
      spdlog::warn("lease poll failed: {}; retrying", resp.status().ToString());
      sleep_backoff();
      continue;
    }
    if (resp->status == 204) continue;
    if (resp->status == 404) {  // herdd forgot us (new data dir): register again
      impl_->worker_id.clear();
      continue;
    }
    auto body = api::JsonResult(*resp);
    if (!body.ok()) {
      spdlog::warn("lease failed: {}", body.status().ToString());
      sleep_backoff();
      continue;
    }
    backoff = opts_.retry_ms;
    const json& task = (*body)["task"];
    const std::string lease = (*body)["lease"]["id"].get<std::string>();
    TaskContext ctx(task["id"].get<std::string>(), task["kind"].get<std::string>(), task["spec"]);
    spdlog::info("task={} kind={} lease={} attempt={} started", ctx.id(), ctx.kind(), lease,
                 task.value("attempt", 0));

    // Heartbeats while the handler runs.
    std::mutex hb_mu;
    std::condition_variable hb_cv;
    bool done = false;
    std::thread hb([&] {
      std::unique_lock<std::mutex> l(hb_mu);
      while (!hb_cv.wait_for(l, std::chrono::milliseconds(opts_.heartbeat_ms), [&] { return done; })) {
        l.unlock();
        bool changed = false;
        json progress = ctx.TakeProgress(&changed);
        json b = json::object();
        if (changed) b["progress"] = progress;
        auto r = impl_->hb_client->Request("POST", "/v1/leases/" + lease + "/heartbeat", b.dump());
        if (r.ok() && r->status == 410) {
          spdlog::warn("task={} lease lost; dropping it", ctx.id());
          ctx.RequestStop();
        } else if (r.ok() && r->status == 200) {
          auto j = json::parse(r->body, nullptr, false);
          if (j.is_object() && j.value("cancel", false)) {
            spdlog::info("task={} cancelled by herdd", ctx.id());
            ctx.RequestStop();
          }
        }
        l.lock();
      }
    });

    auto started = std::chrono::steady_clock::now();
    Result<json> result = Status::Internal("no handler");
    auto h = handlers_.find(ctx.kind());
    if (h == handlers_.end()) {
      result = Status::InvalidArgument("this worker has no handler for task kind '" + ctx.kind() + "'");
    } else {
      try {
        result = h->second(ctx);
      } catch (const std::exception& e) {
        result = Status::Internal(std::string("handler threw: ") + e.what());
      }
    }
    {
      std::lock_guard<std::mutex> l(hb_mu);
      done = true;
    }
    hb_cv.notify_all();
    hb.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    // Deliver, retrying through a herdd restart: the lease id fences
    // duplicates, so a retried completion is harmless.
    for (int attempt = 0; attempt < 20 && !stop_; ++attempt) {
      Result<api::Response> r = Status::Internal("unset");
      if (result.ok()) {
        r = impl_->client->Request("POST", "/v1/leases/" + lease + "/complete",
                                   json{{"result", *result}}.dump());
      } else {
        // A bad spec or a corrupt input checkpoint fails the same way on
        // every worker: herdd decides what comes next.
        const Status::Code code = result.status().code();
        bool retryable = code != Status::Code::kInvalidArgument && code != Status::Code::kDataLoss;
        r = impl_->client->Request("POST", "/v1/leases/" + lease + "/fail",
                                   json{{"error", result.status().ToString()}, {"retryable", retryable}}.dump());
      }
      if (!r.ok() || r->status >= 500) {
        spdlog::warn("task={} delivering result failed ({}); retrying", ctx.id(),
                     r.ok() ? std::to_string(r->status) : r.status().ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(opts_.retry_ms));
        continue;
      }
      if (r->status == 410) {
        spdlog::warn("task={} result refused: lease no longer current", ctx.id());
      } else if (r->status == 422 && result.ok()) {
        // herdd refused the result: report it as a permanent failure.
        std::string why = api::StatusFromResponse(*r).message();
        spdlog::error("task={} result rejected: {}", ctx.id(), why);
        result = Status::InvalidArgument("result rejected by herdd: " + why);
        continue;
      } else if (r->status >= 400) {
        spdlog::error("task={} delivering result: HTTP {}: {}", ctx.id(), r->status, r->body);
      }
      break;
    }
    spdlog::info("task={} kind={} {} in {:.2f}s", ctx.id(), ctx.kind(),
                 result.ok() ? "succeeded" : "failed: " + result.status().ToString(), secs);
    ++tasks_done_;
    if (opts_.max_tasks > 0 && tasks_done_ >= opts_.max_tasks) break;
  }
  return Status::Ok();
}

Result<json> Worker::RunLocal(const std::string& kind, const json& spec) {
  auto h = handlers_.find(kind);
  if (h == handlers_.end()) return Status::InvalidArgument("no handler for task kind '" + kind + "'");
  TaskContext ctx("local", kind, spec);
  return h->second(ctx);
}

void AddBuiltinHandlers(Worker& w) {
  w.AddHandler("noop", [](TaskContext& ctx) -> Result<json> {
    int64_t ms = ctx.spec().value("sleep_ms", int64_t{0});
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) {
      if (ctx.ShouldStop()) return Status::Aborted("stopped");
      ctx.Report({{"step", 1}});
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(ms, 20)));
    }
    return json{{"slept_ms", ms}};
  });
}

}  // namespace herd::worker
