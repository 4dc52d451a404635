#include "tests/chaos/crash_loop.h"

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "tests/chaos/processes.h"
#include "tests/testing/tiny_llama.h"

namespace herd::chaos {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

nlohmann::json ChaosRunConfig(const CrashLoopOptions& o, const std::string& base) {
  json train = {{"lr", 1e-3}, {"steps", o.train_steps}, {"batch_rows", 4}, {"seq_len", 96}};
  json variants = {{{"name", "a"}, {"seed", 1}}, {{"name", "b"}, {"seed", 2}}};
  json rm = train, sft = train, dpo = train;
  rm["variants"] = sft["variants"] = dpo["variants"] = variants;
  return {{"name", "chaos"},
          {"base_checkpoint", base},
          {"rounds", o.rounds},
          // Killed workers cost attempts; the run must outlast the driver.
          {"max_attempts", 50},
          {"reward_model", rm},
          {"sft", sft},
          {"dpo", dpo},
          {"rejection_sampling", {{"k", 4}, {"max_new_tokens", 8}, {"prompts_per_round", 12},
                                  {"prompts_per_task", 3}}},
          {"annotation", {{"comparisons_per_round", 6}, {"min_answers", 6}, {"max_new_tokens", 6}}},
          {"eval", {{"prompts", 4}, {"checker", "arithmetic"}}}};
}

std::string ChaosPromptsJsonl() {
  std::string jsonl;
  for (int i = 0; i < 24; ++i) {
    jsonl += json{{"id", "q" + std::to_string(i)},
                  {"prompt", "What is " + std::to_string(i) + "+" + std::to_string(2 * i) + "?"},
                  {"split", i < 18 ? "train" : "eval"}}.dump() + "\n";
  }
  return jsonl;
}

namespace {

// A client that talks to whatever herdd currently listens on url; every
// call is retried through refused connections, resets and 5xx until
// `deadline`, as a real client's retry loop would. The idempotency of each
// call is the caller's business (an Idempotency-Key, or a 409 that says
// "already done").
class RetryingClient {
 public:
  RetryingClient(std::string url, std::atomic<int>* retries) : url_(std::move(url)), retries_(retries) {}

  Result<api::Response> Call(const std::string& method, const std::string& target, const std::string& body,
                             const api::Headers& h, Clock::time_point deadline) {
    Status last = Status::Ok();
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) {
        retries_->fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * attempt, 500)));
      }
      if (Clock::now() > deadline) {
        return Status::Unavailable(method + " " + target + ": gave up; last: " + last.ToString());
      }
      if (!client_) {
        api::ClientOptions co;
        co.base_url = url_;
        co.timeout = std::chrono::milliseconds(10000);
        auto c = api::HttpClient::Create(co);
        if (!c.ok()) return c.status();
        client_ = std::move(c).value();
      }
      auto r = client_->Request(method, target, body, h);
      if (!r.ok()) {
        last = r.status();
        client_.reset();
        continue;
      }
      if (r->status >= 500) {
        last = Status::Unavailable(std::to_string(r->status) + " " + r->body);
        continue;
      }
      return r;
    }
  }

  Result<json> GetJson(const std::string& target, Clock::time_point deadline) {
    HERD_ASSIGN_OR_RETURN(api::Response r, Call("GET", target, "", {}, deadline));
    return api::JsonResult(r);
  }

 private:
  std::string url_;
  std::atomic<int>* retries_;
  std::unique_ptr<api::HttpClient> client_;
};

// The crash loop's workers ("chaos-w<i>") that hold a lease now, by index;
// none when herdd does not answer. `ids` maps worker ids to indices and
// grows with every listing seen: a worker busy with a long task keeps the
// id it had before a herdd restart, which the new herdd lists only once it
// registers again.
std::vector<int> BusyWorkers(const std::string& url, int workers, std::map<std::string, int>* ids) {
  api::ClientOptions co;
  co.base_url = url;
  co.timeout = std::chrono::milliseconds(2000);
  auto c = api::HttpClient::Create(co);
  if (!c.ok()) return {};
  if (auto ws = api::GetJson(**c, "/v1/workers"); ws.ok()) {
    for (const auto& w : (*ws)["workers"]) {
      const std::string name = w.value("name", "");
      if (name.rfind("chaos-w", 0) != 0) continue;
      const int i = std::atoi(name.c_str() + 7);
      if (i >= 0 && i < workers) (*ids)[w.value("id", "")] = i;
    }
  }
  auto leased = api::GetJson(**c, "/v1/tasks?state=leased");
  if (!leased.ok()) return {};
  std::set<int> busy;
  for (const auto& t : (*leased)["tasks"]) {
    auto it = ids->find(t.value("worker_id", ""));
    if (it != ids->end()) busy.insert(it->second);
  }
  return {busy.begin(), busy.end()};
}

// Every item of a paged listing.
Status Pages(RetryingClient& c, const std::string& path, const char* key, Clock::time_point deadline,
             const std::function<void(const json&)>& f) {
  std::string token;
  do {
    std::string sep = path.find('?') == std::string::npos ? "?" : "&";
    HERD_ASSIGN_OR_RETURN(json p, c.GetJson(path + sep + "page_size=200" +
                                                (token.empty() ? "" : "&page_token=" + token),
                                            deadline));
    for (const auto& x : p[key]) f(x);
    token = p.value("next_page_token", "");
  } while (!token.empty());
  return Status::Ok();
}

// What a finished run holds, for comparing an interrupted run with an
// uninterrupted one.
struct RunRecords {
  std::string id, state, error;
  std::map<std::string, int> samples_per_prompt;  // "round/prompt" → samples
  std::map<std::string, int> selected_per_prompt;
  std::map<std::string, std::set<std::string>> tasks_per_prompt;  // "round/prompt" → task ids
  int duplicate_samples = 0;                      // same (round, prompt, idx) twice
  std::map<std::string, int> tasks_per_stage;     // "round/stage" → tasks
  std::map<std::string, int> task_states;
  int tasks_retried = 0;
  int max_attempt = 0;
  int checkpoints = 0;
  int requests = 0;
  std::map<std::string, int> request_states;
  int requests_doubled = 0;  // a (round, prompt) with more than one request
  std::map<std::string, int> annotations_by_id;       // annotation id → copies
  std::map<std::string, int> annotations_by_request;  // request id → copies
  std::map<std::string, int> pairs_by_annotation;     // annotation id → pairs
};

Result<RunRecords> ReadRecords(RetryingClient& c, const std::string& run, Clock::time_point deadline) {
  RunRecords r;
  HERD_ASSIGN_OR_RETURN(json j, c.GetJson("/v1/runs/" + run, deadline));
  r.state = j["run"].value("state", "");
  r.error = j["run"].value("error", "");
  std::set<std::string> sample_keys, request_keys;
  HERD_RETURN_IF_ERROR(Pages(c, "/v1/runs/" + run + "/samples", "samples", deadline, [&](const json& s) {
    std::string key = std::to_string(s["round"].get<int>()) + "/" + s["prompt_id"].get<std::string>();
    ++r.samples_per_prompt[key];
    r.selected_per_prompt[key] += s.value("selected", false) ? 1 : 0;
    r.tasks_per_prompt[key].insert(s.value("task_id", ""));
    if (!sample_keys.insert(key + "/" + std::to_string(s["idx"].get<int>())).second) ++r.duplicate_samples;
  }));
  HERD_ASSIGN_OR_RETURN(json tasks, c.GetJson("/v1/tasks?run=" + run, deadline));
  for (const auto& t : tasks["tasks"]) {
    ++r.tasks_per_stage[std::to_string(t["round"].get<int>()) + "/" + t["stage"].get<std::string>()];
    ++r.task_states[t["state"].get<std::string>()];
    r.tasks_retried += t.value("attempt", 1) > 1;
    r.max_attempt = std::max(r.max_attempt, t.value("attempt", 1));
  }
  HERD_RETURN_IF_ERROR(Pages(c, "/v1/runs/" + run + "/checkpoints", "checkpoints", deadline,
                             [&](const json&) { ++r.checkpoints; }));
  HERD_RETURN_IF_ERROR(Pages(c, "/v1/runs/" + run + "/annotation-requests", "annotation_requests", deadline,
                             [&](const json& q) {
                               ++r.requests;
                               ++r.request_states[q.value("state", "")];
                               const std::string key = std::to_string(q.value("round", 0)) + "/" +
                                                       q.value("prompt_id", "");
                               r.requests_doubled += !request_keys.insert(key).second;
                             }));
  HERD_RETURN_IF_ERROR(Pages(c, "/v1/runs/" + run + "/pairs", "pairs", deadline, [&](const json& p) {
    ++r.pairs_by_annotation[p.value("annotation_id", "")];
  }));
  HERD_ASSIGN_OR_RETURN(api::Response ex, c.Call("GET", "/v1/runs/" + run + "/export/annotations", "", {}, deadline));
  HERD_RETURN_IF_ERROR(api::StatusFromResponse(ex));
  std::istringstream lines(ex.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    json a = json::parse(line, nullptr, false);
    if (!a.is_object()) return Status::Internal("export/annotations: a line that is not JSON: " + line);
    ++r.annotations_by_id[a.value("id", "")];
    if (!a.value("request_id", "").empty()) ++r.annotations_by_request[a["request_id"]];
  }
  return r;
}

// The run's two clients: the uploader sends annotation batches (each with
// its Idempotency-Key, resent until acknowledged), the annotator answers
// pending annotation requests (resent until 200, or 409: already answered).
class Clients {
 public:
  Clients(std::string url, std::string run, int batches, std::atomic<int>* retries, Clock::time_point deadline)
      : url_(std::move(url)), run_(std::move(run)), batches_(batches), retries_(retries), deadline_(deadline) {}

  void Start() {
    uploader_ = std::thread([this] { Upload(); });
    annotator_ = std::thread([this] { Annotate(); });
  }
  // Called when the run has ended: the annotator stops; the uploader sends
  // whatever batches are left (they land in the finished run's last round).
  void Stop() {
    stop_ = true;
    if (uploader_.joinable()) uploader_.join();
    if (annotator_.joinable()) annotator_.join();
  }

  std::vector<std::string> uploaded() {
    std::lock_guard<std::mutex> l(mu_);
    return uploaded_;
  }
  std::vector<std::string> answered() {
    std::lock_guard<std::mutex> l(mu_);
    return answered_;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> l(mu_);
    return errors_;
  }

 private:
  void Upload() {
    RetryingClient c(url_, retries_);
    for (int b = 0; b < batches_; ++b) {
      std::string body;
      std::vector<std::string> ids;
      for (int i = 0; i < 5; ++i) {
        ids.push_back("up-" + std::to_string(b) + "-" + std::to_string(i));
        body += json{{"id", ids.back()},
                     {"prompt", "What is " + std::to_string(b) + "+" + std::to_string(i) + "?"},
                     {"chosen", std::to_string(b + i)},
                     {"rejected", std::to_string(b + i + 1)},
                     {"strength", "better"},
                     {"annotator", "chaos-uploader"}}.dump() + "\n";
      }
      api::Headers h;
      h.Set("Content-Type", "application/x-ndjson");
      h.Set("Idempotency-Key", "chaos-batch-" + std::to_string(b));
      auto r = c.Call("POST", "/v1/runs/" + run_ + "/annotations?atomic=true", body, h, deadline_);
      std::lock_guard<std::mutex> l(mu_);
      if (!r.ok()) {
        errors_.push_back("upload batch " + std::to_string(b) + ": " + r.status().ToString());
      } else if (r->status != 200) {
        errors_.push_back("upload batch " + std::to_string(b) + ": HTTP " + std::to_string(r->status) + " " + r->body);
      } else {
        uploaded_.insert(uploaded_.end(), ids.begin(), ids.end());
      }
      if (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }

  void Annotate() {
    RetryingClient c(url_, retries_);
    std::set<std::string> done;
    while (!stop_ && Clock::now() < deadline_) {
      auto page = c.GetJson("/v1/runs/" + run_ + "/annotation-requests?state=pending&page_size=1000", deadline_);
      if (page.ok()) {
        for (const auto& q : (*page)["annotation_requests"]) {
          std::string id = q["id"];
          if (done.count(id)) continue;
          auto r = c.Call("POST", "/v1/runs/" + run_ + "/annotation-requests/" + id + ":answer",
                          R"({"choice":"a","strength":"better","annotator":"chaos-annotator"})", {}, deadline_);
          std::lock_guard<std::mutex> l(mu_);
          if (r.ok() && (r->status == 200 || r->status == 409)) {
            done.insert(id);
            answered_.push_back(id);
          } else {
            errors_.push_back("answer " + id + ": " +
                              (r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body : r.status().ToString()));
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::string url_, run_;
  int batches_;
  std::atomic<int>* retries_;
  Clock::time_point deadline_;
  std::atomic<bool> stop_{false};
  std::thread uploader_, annotator_;
  std::mutex mu_;
  std::vector<std::string> uploaded_, answered_, errors_;
};

template <typename K, typename V>
std::string Diff(const std::map<K, V>& want, const std::map<K, V>& got) {
  std::ostringstream out;
  int n = 0;
  std::set<K> keys;
  for (const auto& [k, v] : want) keys.insert(k);
  for (const auto& [k, v] : got) keys.insert(k);
  for (const auto& k : keys) {
    auto w = want.count(k) ? want.at(k) : V{};
    auto g = got.count(k) ? got.at(k) : V{};
    if (w == g) continue;
    if (n++ < 5) out << " " << k << ": want " << w << " got " << g << ";";
  }
  if (n > 5) out << " (" << n << " differences)";
  return out.str();
}

}  // namespace

bool CrashLoopReport::ok() const {
  if (checks.empty()) return false;
  for (const auto& c : checks) {
    if (!c.ok) return false;
  }
  return true;
}

std::string CrashLoopReport::Format() const {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line,
                "crash loop: %d herdd SIGKILLs, %d herd-worker SIGKILLs (%d mid-task) %d..%d ms apart in %.1f s "
                "(uninterrupted run: %.1f s)\n",
                herdd_kills, worker_kills, worker_kills_mid_task, max_gap_ms / 4, max_gap_ms, wall_s,
                reference_wall_s);
  out << line;
  std::snprintf(line, sizeof line,
                "clients: %d uploaded annotations and %d answers acknowledged, %d requests resent\n",
                uploads_acknowledged, answers_acknowledged, client_retries);
  out << line;
  for (const auto& c : checks) out << (c.ok ? "  ok    " : "  FAIL  ") << c.what << (c.detail.empty() ? "" : ": " + c.detail) << "\n";
  out << (ok() ? "PASS" : "FAIL") << "\n";
  return out.str();
}

Result<CrashLoopReport> RunCrashLoop(const CrashLoopOptions& o) {
  CrashLoopReport report;
  auto say = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  fs::create_directories(o.work_dir);
  const std::string base = o.work_dir + "/base";
  if (!fs::exists(base + "/config.json")) HERD_RETURN_IF_ERROR(testing::SaveTinyChatModel(base, 5));
  const json config = ChaosRunConfig(o, base);
  const auto deadline = Clock::now() + std::chrono::seconds(o.timeout_s);
  std::atomic<int> retries{0};

  // Creates and starts the run; returns its id.
  auto create = [&](const std::string& url) -> Result<std::string> {
    RetryingClient c(url, &retries);
    HERD_ASSIGN_OR_RETURN(api::Response r, c.Call("POST", "/v1/runs", config.dump(), {}, deadline));
    HERD_ASSIGN_OR_RETURN(json run, api::JsonResult(r));
    std::string id = run["run"]["id"];
    HERD_ASSIGN_OR_RETURN(r, c.Call("POST", "/v1/runs/" + id + "/prompts", ChaosPromptsJsonl(), {}, deadline));
    HERD_RETURN_IF_ERROR(api::StatusFromResponse(r).WithContext("uploading prompts"));
    HERD_ASSIGN_OR_RETURN(r, c.Call("POST", "/v1/runs/" + id + ":start", "", {}, deadline));
    HERD_RETURN_IF_ERROR(api::StatusFromResponse(r).WithContext("starting the run"));
    return id;
  };
  auto ended = [](const std::string& state) {
    return state == "succeeded" || state == "failed" || state == "cancelled";
  };

  // 1. The uninterrupted run.
  RunRecords want;
  if (o.reference) {
    Processes p(o.build_dir, o.work_dir + "/reference");
    HERD_RETURN_IF_ERROR(p.StartHerdd());
    auto t0 = Clock::now();
    // The run before the workers: its id (which salts every seeded choice)
    // must not depend on when the workers registered.
    HERD_ASSIGN_OR_RETURN(std::string run, create(p.url()));
    for (int i = 0; i < o.workers; ++i) HERD_RETURN_IF_ERROR(p.StartWorker(i));
    Clients clients(p.url(), run, 0, &retries, deadline);
    clients.Start();
    RetryingClient c(p.url(), &retries);
    std::string state;
    while (!ended(state) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto j = c.GetJson("/v1/runs/" + run, deadline);
      if (j.ok()) state = (*j)["run"].value("state", "");
    }
    clients.Stop();
    report.reference_wall_s = Seconds(t0);
    HERD_ASSIGN_OR_RETURN(want, ReadRecords(c, run, deadline));
    want.id = run;
    if (want.state != "succeeded") {
      return Status::Internal("the uninterrupted reference run ended " + want.state + ": " + want.error);
    }
    say("uninterrupted run: " + std::to_string(report.reference_wall_s) + " s");
  }

  // 2. The same run under kills.
  Processes p(o.build_dir, o.work_dir + "/crash");
  HERD_RETURN_IF_ERROR(p.StartHerdd());
  const std::string url = p.url();
  auto t0 = Clock::now();
  HERD_ASSIGN_OR_RETURN(std::string run, create(url));
  for (int i = 0; i < o.workers; ++i) HERD_RETURN_IF_ERROR(p.StartWorker(i));
  Clients clients(url, run, o.upload_batches, &retries, deadline);
  clients.Start();
  std::mt19937_64 rng(o.seed);
  // The kills must all land before the run ends: with the uninterrupted
  // run's wall time known, the gaps shrink so that they are expected to
  // take at most 60% of it (a run under kills is slower still).
  int max_gap = o.max_gap_ms;
  const int kills = o.herdd_kills + o.worker_kills;
  if (o.reference && kills > 0) {
    const double fit_ms = 0.6 * report.reference_wall_s * 1000.0 / (0.625 * kills);
    max_gap = std::max(100, std::min(max_gap, static_cast<int>(fit_ms)));
  }
  report.max_gap_ms = max_gap;
  std::uniform_int_distribution<int> gap(std::max(1, max_gap / 4), std::max(1, max_gap));
  auto next_kill = Clock::now() + std::chrono::milliseconds(gap(rng));
  RetryingClient c(url, &retries);
  std::string state;
  std::vector<std::string> unexpected;
  std::map<std::string, int> worker_ids;  // BusyWorkers' id → index, kept up every poll
  while (!ended(state) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (auto& e : p.Reap()) unexpected.push_back(e);
    const bool herdd_due = report.herdd_kills < o.herdd_kills;
    const bool worker_due = report.worker_kills < o.worker_kills;
    if ((herdd_due || worker_due) && Clock::now() >= next_kill) {
      bool kill_herdd = herdd_due && (!worker_due || rng() % 2 == 0);
      if (kill_herdd) {
        p.KillHerdd();
        ++report.herdd_kills;
        say("kill " + std::to_string(report.herdd_kills + report.worker_kills) + ": herdd (SIGKILL), restarting");
        if (Status s = p.StartHerdd(); !s.ok()) return s.WithContext("restarting herdd after a kill");
      } else {
        // A worker that holds a lease, when one does (a kill of an idle
        // worker tests little), else any.
        std::vector<int> busy = BusyWorkers(url, o.workers, &worker_ids);
        const bool mid_task = !busy.empty();
        int w = mid_task ? busy[rng() % busy.size()] : static_cast<int>(rng() % o.workers);
        p.KillWorker(w);
        // The dead process's leases are not the new one's work.
        for (auto it = worker_ids.begin(); it != worker_ids.end();) {
          it = it->second == w ? worker_ids.erase(it) : std::next(it);
        }
        ++report.worker_kills;
        report.worker_kills_mid_task += mid_task;
        say("kill " + std::to_string(report.herdd_kills + report.worker_kills) + ": worker " + std::to_string(w) +
            (mid_task ? " (SIGKILL, mid-task), restarting" : " (SIGKILL, idle), restarting"));
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
        HERD_RETURN_IF_ERROR(p.StartWorker(w));
      }
      next_kill = Clock::now() + std::chrono::milliseconds(gap(rng));
    }
    auto j = c.GetJson("/v1/runs/" + run, deadline);
    if (j.ok()) state = (*j)["run"].value("state", "");
    if (report.worker_kills < o.worker_kills) (void)BusyWorkers(url, o.workers, &worker_ids);
  }
  clients.Stop();
  report.wall_s = Seconds(t0);
  for (auto& e : p.Reap()) unexpected.push_back(e);
  HERD_ASSIGN_OR_RETURN(RunRecords got, ReadRecords(c, run, deadline));
  got.id = run;
  report.client_retries = retries.load();
  report.tasks_retried = got.tasks_retried;
  const auto uploaded = clients.uploaded();
  const auto answered = clients.answered();
  report.uploads_acknowledged = static_cast<int>(uploaded.size());
  report.answers_acknowledged = static_cast<int>(answered.size());

  auto check = [&](std::string what, bool ok, std::string detail = "") {
    report.checks.push_back({std::move(what), ok, std::move(detail)});
  };
  check("the run succeeded", got.state == "succeeded", got.state + (got.error.empty() ? "" : ": " + got.error));
  check("herdd killed at least " + std::to_string(o.herdd_kills) + " times before the run ended",
        report.herdd_kills >= o.herdd_kills, std::to_string(report.herdd_kills));
  check("herd-worker killed at least " + std::to_string(o.worker_kills) + " times before the run ended",
        report.worker_kills >= o.worker_kills, std::to_string(report.worker_kills));
  {
    std::string d;
    for (const auto& e : unexpected) d += (d.empty() ? "" : "; ") + e;
    check("no process exited except by the driver's kills", unexpected.empty(), d);
  }
  {
    std::string d;
    for (const auto& e : clients.errors()) d += (d.empty() ? "" : "; ") + e;
    check("every upload and answer was eventually acknowledged", clients.errors().empty(), d);
  }

  // Uploaded annotations: each acknowledged id once, with its one pair.
  int missing = 0, doubled = 0, pairs_wrong = 0;
  for (const auto& id : uploaded) {
    int n = got.annotations_by_id.count(id) ? got.annotations_by_id.at(id) : 0;
    missing += n == 0;
    doubled += n > 1;
    pairs_wrong += (got.pairs_by_annotation.count(id) ? got.pairs_by_annotation.at(id) : 0) != 1;
  }
  int strays = 0;
  std::set<std::string> acked(uploaded.begin(), uploaded.end());
  for (const auto& [id, n] : got.annotations_by_id) strays += id.rfind("up-", 0) == 0 && !acked.count(id);
  check("every acknowledged uploaded annotation is stored exactly once",
        !uploaded.empty() && missing == 0 && doubled == 0 && strays == 0,
        std::to_string(uploaded.size()) + " acknowledged, " + std::to_string(missing) + " missing, " +
            std::to_string(doubled) + " stored twice, " + std::to_string(strays) + " stored but never acknowledged");
  check("each uploaded annotation has its one implied pair", pairs_wrong == 0,
        std::to_string(pairs_wrong) + " with a pair count other than 1");

  // Answers: each acknowledged request answered once.
  missing = doubled = 0;
  for (const auto& id : answered) {
    int n = got.annotations_by_request.count(id) ? got.annotations_by_request.at(id) : 0;
    missing += n == 0;
    doubled += n > 1;
  }
  check("every acknowledged answer is stored exactly once", !answered.empty() && missing == 0 && doubled == 0,
        std::to_string(answered.size()) + " acknowledged, " + std::to_string(missing) + " missing, " +
            std::to_string(doubled) + " stored twice");
  check("every annotation request was answered",
        got.requests > 0 && got.request_states["answered"] == got.requests,
        std::to_string(got.request_states["answered"]) + " of " + std::to_string(got.requests));

  // Samples and tasks: what an uninterrupted run produced, nothing twice.
  check("no sample stored twice", got.duplicate_samples == 0, std::to_string(got.duplicate_samples));
  int split = 0;
  for (const auto& [k, ids] : got.tasks_per_prompt) split += ids.size() != 1;
  check("each prompt's samples come from one task (no task committed twice)", split == 0,
        std::to_string(split) + " prompts with samples from several tasks");
  int not_one = 0;
  for (const auto& [k, n] : got.selected_per_prompt) not_one += n != 1;
  check("one selected sample per prompt and round", not_one == 0, std::to_string(not_one) + " prompts");
  {
    std::string d;
    for (const auto& [state, n] : got.task_states) d += (d.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    check("every task succeeded", got.task_states.size() == 1 && got.task_states.count("succeeded"),
          d + "; " + std::to_string(got.tasks_retried) + " needed more than one attempt, at most " +
              std::to_string(got.max_attempt));
  }
  if (o.reference) {
    check("the same run id as the uninterrupted run (it salts the seeded choices)", got.id == want.id,
          want.id + " vs " + got.id);
    check("samples per prompt and round equal the uninterrupted run's",
          got.samples_per_prompt == want.samples_per_prompt, Diff(want.samples_per_prompt, got.samples_per_prompt));
    check("tasks per round and stage equal the uninterrupted run's", got.tasks_per_stage == want.tasks_per_stage,
          Diff(want.tasks_per_stage, got.tasks_per_stage));
    check("checkpoints equal the uninterrupted run's", got.checkpoints == want.checkpoints,
          "want " + std::to_string(want.checkpoints) + " got " + std::to_string(got.checkpoints));
    // How many requests a round makes depends on the policy (a prompt
    // whose two answers are identical makes none), and the uploads change
    // the policies: the count is no invariant, one request per prompt is.
    check("at most one annotation request per prompt and round (no generate task applied twice)",
          got.requests_doubled == 0 && got.requests > 0,
          std::to_string(got.requests) + " requests (uninterrupted run: " + std::to_string(want.requests) + "), " +
              std::to_string(got.requests_doubled) + " doubled");
  }
  return report;
}

}  // namespace herd::chaos
