#include "daemon/orchestrator.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "stores/artifacts.h"
#include "common/sha256.h"
#include "stores/store.h"

namespace herd::daemon {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

enum StageIndex : size_t { kCollect = 0, kRm, kRs, kSft, kDpo, kEval };

// ---- daemon task <-> stored task --------------------------------------------

stores::Task ToStore(const Task& t) {
  stores::Task s;
  s.id = t.id;
  s.run_id = t.run;
  s.round = static_cast<uint32_t>(t.round);
  s.stage = t.stage;
  s.kind = t.kind;
  s.spec_json = t.spec;
  s.requirements_json =
      json{{"device", t.needs.device}, {"min_memory_bytes", t.needs.min_memory_bytes}}.dump();
  s.priority = t.priority;
  s.queue_seq = t.seq;
  s.state = t.state;
  s.attempt = static_cast<uint32_t>(t.attempt);
  s.max_attempts = static_cast<uint32_t>(t.max_attempts);
  s.not_before_ms = t.not_before;
  s.lease_id = t.lease_id;
  s.worker_id = t.worker_id;
  s.lease_expires_ms = t.lease_expires;
  s.progress_json = t.progress;
  s.result_json = t.result;
  s.error = t.error;
  if (t.cancel_requested) s.error = s.error.empty() ? "cancel requested" : s.error;
  s.created_ms = t.created_ms;
  s.updated_ms = t.updated_ms;
  return s;
}

Task FromStore(const stores::Task& s) {
  Task t;
  t.id = s.id;
  t.run = s.run_id;
  t.round = s.round;
  t.stage = s.stage;
  t.kind = s.kind;
  t.spec = s.spec_json;
  json req = json::parse(s.requirements_json.empty() ? "{}" : s.requirements_json, nullptr, false);
  if (req.is_object()) {
    t.needs.device = req.value("device", std::string("cpu"));
    t.needs.min_memory_bytes = req.value("min_memory_bytes", int64_t{0});
  }
  t.priority = s.priority;
  t.seq = s.queue_seq;
  t.state = s.state;
  t.attempt = static_cast<int32_t>(s.attempt);
  t.max_attempts = static_cast<int32_t>(s.max_attempts);
  t.not_before = s.not_before_ms;
  t.lease_id = s.lease_id;
  t.worker_id = s.worker_id;
  t.lease_expires = s.lease_expires_ms;
  t.progress = s.progress_json;
  t.result = s.result_json;
  t.error = s.error;
  t.created_ms = s.created_ms;
  t.updated_ms = s.updated_ms;
  return t;
}

// A stable 64-bit hash for deterministic selection and held-out splits.
uint64_t Hash64(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

json MessagesJson(const std::vector<stores::Message>& ms) {
  json a = json::array();
  for (const auto& m : ms) a.push_back({{"role", m.role}, {"content", m.content}});
  return a;
}

json HparamsJson(const TrainHparams& h) {
  return {{"lr", h.lr},           {"min_lr_ratio", h.min_lr_ratio}, {"warmup_steps", h.warmup_steps},
          {"steps", h.steps},     {"batch_rows", h.batch_rows},     {"seq_len", h.seq_len},
          {"weight_decay", h.weight_decay}, {"grad_clip", h.grad_clip}, {"seed", h.seed},
          {"schedule", h.schedule}};
}

const StageConfig& StageCfg(const RunConfig& c, size_t stage) {
  if (stage == kRm) return c.reward_model;
  if (stage == kSft) return c.sft;
  return c.dpo;
}

const char* TrainKind(size_t stage) {
  return stage == kRm ? "train_rm" : stage == kSft ? "train_sft" : "train_dpo";
}

stores::Round NewRound(const std::string& run, uint32_t r, Millis now) {
  stores::Round round;
  round.run_id = run;
  round.round = r;
  round.state = "running";
  for (const char* s : kStages) {
    stores::StageStatus st;
    st.stage = s;
    st.state = "pending";
    round.stages.push_back(st);
  }
  round.created_ms = round.updated_ms = now;
  return round;
}

Status WriteJsonl(const std::string& path, const std::vector<json>& rows) {
  fs::create_directories(fs::path(path).parent_path());
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Status::IoError("cannot write " + tmp);
    for (const auto& r : rows) f << r.dump() << '\n';
    if (!f) return Status::IoError("write failed: " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IoError("rename " + tmp + ": " + ec.message());
  return Status::Ok();
}

Status ForEachRun(stores::Store* store, const std::function<void(const stores::Run&)>& fn) {
  stores::PageRequest req;
  req.page_size = 1000;
  while (true) {
    HERD_ASSIGN_OR_RETURN(auto page, store->ListRuns(req));
    for (const auto& r : page.items) fn(r);
    if (page.next_page_token.empty()) return Status::Ok();
    req.page_token = page.next_page_token;
  }
}

}  // namespace

// Per-advance context: the run and its parsed config.
struct Orchestrator::RunCtx {
  stores::Run run;
  RunConfig cfg;
  std::string base_checkpoint_id;
};

std::vector<stores::Pair> ImpliedPairs(const stores::Annotation& a) {
  std::vector<std::string> ranked;
  if (a.edited) ranked.push_back(*a.edited);
  for (const auto& r : a.responses) ranked.push_back(r);
  std::vector<stores::Pair> out;
  for (size_t i = 0; i < ranked.size(); ++i) {
    for (size_t j = i + 1; j < ranked.size(); ++j) {
      if (ranked[i] == ranked[j]) continue;
      stores::Pair p;
      p.run_id = a.run_id;
      p.round = a.round;
      p.id = a.id + "#" + std::to_string(i) + ">" + std::to_string(j);
      p.prompt = a.prompt;
      p.chosen = ranked[i];
      p.rejected = ranked[j];
      p.strength = a.strength;
      p.source = a.request_id.empty() ? "upload" : "request";
      p.annotation_id = a.id;
      p.annotator = a.annotator;
      p.created_ms = a.received_ms;
      out.push_back(std::move(p));
    }
  }
  return out;
}

Orchestrator::Orchestrator(stores::Store* store, stores::ArtifactStore* artifacts,
                           Scheduler* scheduler, const Clock* clock, OrchestratorOptions opts)
    : store_(store), artifacts_(artifacts), scheduler_(scheduler), clock_(clock), opts_(opts) {
  scheduler_->SetTerminalListener([this](const Task&) {
    std::lock_guard<std::mutex> l(bg_mu_);
    bg_kicked_ = true;
    bg_cv_.notify_all();
  });
}

Orchestrator::~Orchestrator() { StopBackground(); }

Status Orchestrator::Recover() {
  std::vector<Task> tasks;
  HERD_RETURN_IF_ERROR(store_->ForEachTask([&](const stores::Task& t) {
    tasks.push_back(FromStore(t));
    return true;
  }));
  uint64_t max_seq = 0;
  for (const Task& t : tasks) max_seq = std::max(max_seq, t.seq);
  scheduler_->Restore(std::move(tasks), max_seq + 1);
  HERD_RETURN_IF_ERROR(ForEachRun(store_, [&](const stores::Run& r) {
    if (r.state == "paused") scheduler_->SetRunPaused(r.id, true);
  }));
  return Status::Ok();
}

CommitFn Orchestrator::TaskCommit(const TxnFill& extra) {
  return [this, extra](const std::vector<TaskChange>& changes) -> Status {
    stores::WriteTxn txn = store_->NewTxn();
    for (const TaskChange& c : changes) {
      stores::Task before;
      if (c.before) before = ToStore(*c.before);
      txn.PutTask(ToStore(c.after), c.before ? &before : nullptr);
      // A task that just succeeded brings its result's records along.
      if (c.after.state == TaskState::kSucceeded &&
          (!c.before || c.before->state != TaskState::kSucceeded)) {
        HERD_RETURN_IF_ERROR(ApplyResult(txn, c.after, c.after.result));
      }
    }
    if (extra) HERD_RETURN_IF_ERROR(extra(txn));
    return store_->Commit(txn, stores::Durability::kSync);
  };
}

Status Orchestrator::SubmitTasks(std::vector<Task> tasks, const TxnFill& extra) {
  auto r = scheduler_->Submit(std::move(tasks), TaskCommit(extra));
  return r.ok() ? Status::Ok() : r.status();
}

// ---- runs ---------------------------------------------------------------------

Result<stores::Run> Orchestrator::CreateRun(const std::string& config_json) {
  HERD_ASSIGN_OR_RETURN(RunConfig cfg, ParseRunConfig(config_json));
  fs::path base(cfg.base_checkpoint);
  if (!fs::exists(base / "config.json")) {
    return Status::InvalidArgument("base_checkpoint: no config.json in '" + cfg.base_checkpoint +
                                   "' (an HF checkpoint directory is expected)");
  }
  HERD_ASSIGN_OR_RETURN(std::string run_id, store_->NewId("run"));
  HERD_ASSIGN_OR_RETURN(std::string base_id, store_->NewId("ckpt"));
  const Millis now = clock_->NowMs();
  stores::Run run;
  run.id = run_id;
  run.name = cfg.name;
  run.config_json = RunConfigToJson(cfg);
  run.state = "created";
  run.created_ms = run.updated_ms = now;
  stores::Checkpoint base_ck;
  base_ck.id = base_id;
  base_ck.run_id = run_id;
  base_ck.path = fs::absolute(base).string();  // outside the artifact root: the user's model
  base_ck.stage = "base";
  base_ck.created_ms = now;
  stores::WriteTxn txn = store_->NewTxn();
  txn.PutRun(run);
  txn.PutCheckpoint(base_ck);
  txn.AppendEvent({run_id, 0, now, "run.created", "run " + cfg.name + " created", ""});
  HERD_RETURN_IF_ERROR(store_->Commit(txn));
  return run;
}

Status Orchestrator::RunTransition(const std::string& run_id, std::initializer_list<const char*> from,
                                   const std::string& to, const std::string& event) {
  std::lock_guard<std::mutex> l(mu_);
  HERD_ASSIGN_OR_RETURN(stores::Run run, store_->GetRun(run_id));
  std::string allowed;
  bool ok = false;
  for (const char* s : from) {
    ok = ok || run.state == s;
    allowed += (allowed.empty() ? "" : ",") + std::string(s);
  }
  if (!ok) {
    return Status::FailedPrecondition("run " + run_id + " is " + run.state + "; " + event +
                                      " needs it " + allowed);
  }
  const Millis now = clock_->NowMs();
  run.state = to;
  run.updated_ms = now;
  stores::WriteTxn txn = store_->NewTxn();
  if (to == "running" && run.current_round == 0) {
    run.current_round = 1;
    run.current_stage = kStages[0];
    txn.PutRound(NewRound(run_id, 1, now));
  }
  txn.PutRun(run);
  txn.AppendEvent({run_id, 0, now, "run." + event, "run " + event, ""});
  return store_->Commit(txn);
}

Status Orchestrator::StartRun(const std::string& run_id) {
  HERD_RETURN_IF_ERROR(RunTransition(run_id, {"created"}, "running", "started"));
  Kick();
  return Status::Ok();
}

Status Orchestrator::PauseRun(const std::string& run_id) {
  HERD_RETURN_IF_ERROR(RunTransition(run_id, {"running"}, "paused", "paused"));
  scheduler_->SetRunPaused(run_id, true);
  return Status::Ok();
}

Status Orchestrator::ResumeRun(const std::string& run_id) {
  HERD_RETURN_IF_ERROR(RunTransition(run_id, {"paused"}, "running", "resumed"));
  scheduler_->SetRunPaused(run_id, false);
  Kick();
  return Status::Ok();
}

Status Orchestrator::CancelRun(const std::string& run_id) {
  HERD_RETURN_IF_ERROR(
      RunTransition(run_id, {"created", "running", "paused", "failed"}, "cancelled", "cancelled"));
  scheduler_->SetRunPaused(run_id, false);
  return scheduler_->CancelRun(run_id, TaskCommit());
}

Status Orchestrator::DeleteRun(const std::string& run_id) {
  HERD_ASSIGN_OR_RETURN(stores::Run run, store_->GetRun(run_id));
  if (run.state == "running" || run.state == "paused") {
    return Status::FailedPrecondition("run " + run_id + " is " + run.state +
                                      "; cancel it before deleting");
  }
  HERD_RETURN_IF_ERROR(store_->DeleteRunData(run_id));
  return artifacts_->DeleteRun(run_id);
}

Status Orchestrator::RetryStage(const std::string& run_id, uint32_t round_no,
                                const std::string& stage) {
  std::lock_guard<std::mutex> l(mu_);
  HERD_ASSIGN_OR_RETURN(stores::Run run, store_->GetRun(run_id));
  HERD_ASSIGN_OR_RETURN(stores::Round round, store_->GetRound(run_id, round_no));
  auto it = std::find_if(round.stages.begin(), round.stages.end(),
                         [&](const stores::StageStatus& s) { return s.stage == stage; });
  if (it == round.stages.end()) return Status::NotFound("stage '" + stage + "'");
  if (it->state != "failed") {
    return Status::FailedPrecondition("stage " + stage + " of round " + std::to_string(round_no) +
                                      " is " + it->state + "; only a failed stage can be retried");
  }
  HERD_ASSIGN_OR_RETURN(RunConfig cfg, ParseRunConfig(run.config_json));
  for (const Task& t : scheduler_->List([&](const Task& t) {
         return t.run == run_id && t.round == round_no && t.stage == stage &&
                (t.state == TaskState::kFailed || t.state == TaskState::kCancelled);
       })) {
    HERD_RETURN_IF_ERROR(scheduler_->Retry(t.id, static_cast<int32_t>(cfg.max_attempts), TaskCommit()));
  }
  const Millis now = clock_->NowMs();
  it->state = "running";
  it->attempt += 1;
  it->error.clear();
  round.state = "running";
  round.updated_ms = now;
  run.state = "running";
  run.error.clear();
  run.updated_ms = now;
  stores::WriteTxn txn = store_->NewTxn();
  txn.PutRound(round);
  txn.PutRun(run);
  txn.AppendEvent({run_id, 0, now, "stage.retried",
                   "round " + std::to_string(round_no) + " stage " + stage + " retried", ""});
  HERD_RETURN_IF_ERROR(store_->Commit(txn));
  Kick();
  return Status::Ok();
}

Result<RunProgress> Orchestrator::Progress(const std::string& run_id) {
  RunProgress p;
  HERD_ASSIGN_OR_RETURN(p.run, store_->GetRun(run_id));
  if (p.run.current_round > 0) {
    auto r = store_->GetRound(run_id, p.run.current_round);
    if (r.ok()) p.round = *r;
  }
  HERD_ASSIGN_OR_RETURN(p.disk_bytes, artifacts_->RunDiskUsage(run_id));
  return p;
}

// ---- data in -----------------------------------------------------------------

Result<IngestCounts> Orchestrator::AddPrompts(const std::string& run_id,
                                              std::vector<stores::Prompt> prompts) {
  HERD_ASSIGN_OR_RETURN(stores::Run run, store_->GetRun(run_id));
  (void)run;
  IngestCounts c;
  stores::WriteTxn txn = store_->NewTxn();
  std::set<std::string> in_batch;
  const Millis now = clock_->NowMs();
  for (auto& p : prompts) {
    p.run_id = run_id;
    if (p.split.empty()) p.split = "train";
    if (p.created_ms == 0) p.created_ms = now;
    if (!in_batch.insert(p.id).second || store_->GetPrompt(run_id, p.id).ok()) {
      ++c.duplicates;
      continue;
    }
    txn.PutPrompt(p);
    ++c.accepted;
  }
  if (c.accepted) HERD_RETURN_IF_ERROR(store_->Commit(txn));
  return c;
}

Result<IngestCounts> Orchestrator::AddAnnotations(const std::string& run_id,
                                                  std::vector<stores::Annotation> annotations) {
  std::lock_guard<std::mutex> l(mu_);
  HERD_ASSIGN_OR_RETURN(stores::Run run, store_->GetRun(run_id));
  const uint32_t round = std::max<uint32_t>(1, run.current_round);
  IngestCounts c;
  stores::WriteTxn txn = store_->NewTxn();
  std::set<std::string> in_batch;
  const Millis now = clock_->NowMs();
  for (auto& a : annotations) {
    a.run_id = run_id;
    a.round = round;
    if (a.received_ms == 0) a.received_ms = now;
    if (!in_batch.insert(a.id).second || store_->GetAnnotation(run_id, a.id).ok()) {
      ++c.duplicates;
      continue;
    }
    txn.PutAnnotation(a);
    for (const auto& p : ImpliedPairs(a)) txn.PutPair(p);
    txn.AddCounter("answers/" + run_id + "/" + std::to_string(round), 1);
    ++c.accepted;
  }
  if (c.accepted) {
    txn.AppendEvent({run_id, 0, now, "annotations.added",
                     std::to_string(c.accepted) + " annotations added to round " +
                         std::to_string(round), ""});
    HERD_RETURN_IF_ERROR(store_->Commit(txn));
  }
  return c;
}

Status Orchestrator::AnswerRequest(const std::string& run_id, const std::string& request_id,
                                   const Answer& ans) {
  std::lock_guard<std::mutex> l(mu_);
  HERD_ASSIGN_OR_RETURN(stores::Run run, store_->GetRun(run_id));
  HERD_ASSIGN_OR_RETURN(stores::AnnotationRequest req,
                        store_->GetAnnotationRequest(run_id, request_id));
  if (ans.choice != "a" && ans.choice != "b") {
    return Status::InvalidArgument("choice: must be \"a\" or \"b\"");
  }
  HERD_ASSIGN_OR_RETURN(RunConfig cfg, ParseRunConfig(run.config_json));
  std::string strength = ans.strength.empty() ? cfg.annotation.default_strength : ans.strength;
  static const std::set<std::string> kStrengths = {"significantly_better", "better",
                                                   "slightly_better", "marginally_better"};
  if (!kStrengths.count(strength)) {
    return Status::InvalidArgument("strength: unknown value '" + strength + "'");
  }
  if (req.state != "pending") {
    return Status::FailedPrecondition("annotation request " + request_id + " is " + req.state);
  }
  const Millis now = clock_->NowMs();
  stores::Annotation a;
  a.run_id = run_id;
  a.id = "req:" + request_id;
  a.format = "request_answer";
  a.prompt = req.prompt;
  const std::string& win = ans.choice == "a" ? req.response_a : req.response_b;
  const std::string& lose = ans.choice == "a" ? req.response_b : req.response_a;
  a.responses = {win, lose};
  a.strength = strength;
  if (ans.edited && *ans.edited != win) a.edited = ans.edited;
  a.annotator = ans.annotator;
  a.request_id = request_id;
  a.round = req.round;
  a.received_ms = now;
  a.raw = json{{"choice", ans.choice}, {"strength", strength}, {"annotator", ans.annotator}}.dump();
  req.state = "answered";
  req.annotation_id = a.id;
  req.answered_ms = now;
  stores::WriteTxn txn = store_->NewTxn();
  txn.PutAnnotation(a);
  for (const auto& p : ImpliedPairs(a)) txn.PutPair(p);
  txn.PutAnnotationRequest(req);
  txn.AddCounter("answers/" + run_id + "/" + std::to_string(req.round), 1);
  HERD_RETURN_IF_ERROR(store_->Commit(txn));
  Kick();
  return Status::Ok();
}

// ---- worker protocol -----------------------------------------------------------

Result<WorkerInfo> Orchestrator::RegisterWorker(WorkerInfo w) {
  HERD_ASSIGN_OR_RETURN(w.id, store_->NewId("worker"));
  w.registered_ms = w.last_seen_ms = clock_->NowMs();
  stores::Worker sw;
  sw.id = w.id;
  sw.name = w.name;
  sw.device = w.device;
  sw.memory_bytes = static_cast<uint64_t>(w.memory_bytes);
  sw.version = w.version;
  sw.state = "idle";
  sw.registered_ms = sw.last_heartbeat_ms = w.registered_ms;
  HERD_RETURN_IF_ERROR(store_->PutWorker(sw));
  std::lock_guard<std::mutex> l(workers_mu_);
  workers_.push_back(w);
  return w;
}

std::vector<WorkerInfo> Orchestrator::Workers() const {
  std::lock_guard<std::mutex> l(workers_mu_);
  return workers_;
}

Result<std::optional<Task>> Orchestrator::Lease(const std::string& worker_id, Millis wait_ms) {
  WorkerInfo w;
  {
    std::lock_guard<std::mutex> l(workers_mu_);
    auto it = std::find_if(workers_.begin(), workers_.end(),
                           [&](const WorkerInfo& x) { return x.id == worker_id; });
    if (it == workers_.end()) {
      // After a restart the registry is rebuilt from the store.
      auto sw = store_->GetWorker(worker_id);
      if (!sw.ok()) return Status::NotFound("worker " + worker_id + " is not registered");
      WorkerInfo r;
      r.id = sw->id;
      r.name = sw->name;
      r.device = sw->device.rfind("cuda", 0) == 0 ? "cuda" : sw->device;
      r.memory_bytes = static_cast<int64_t>(sw->memory_bytes);
      r.version = sw->version;
      r.registered_ms = sw->registered_ms;
      workers_.push_back(r);
      it = workers_.end() - 1;
    }
    it->last_seen_ms = clock_->NowMs();
    w = *it;
  }
  return scheduler_->Lease(w, wait_ms, TaskCommit());
}

Result<HeartbeatReply> Orchestrator::Heartbeat(const std::string& lease_id,
                                               const std::string& progress_json) {
  return scheduler_->Heartbeat(lease_id, progress_json);
}

Result<CompleteOutcome> Orchestrator::Complete(const std::string& lease_id,
                                               const std::string& result_json) {
  json r = json::parse(result_json, nullptr, false);
  if (!r.is_object()) return Status::InvalidArgument("result: must be a JSON object");
  return scheduler_->Complete(lease_id, result_json, TaskCommit());
}

Status Orchestrator::Fail(const std::string& lease_id, const std::string& error, bool retryable) {
  return scheduler_->Fail(lease_id, error, retryable, TaskCommit());
}

// ---- results → records ----------------------------------------------------------

namespace {

Status BadResult(const Task& t, const std::string& what) {
  return Status::InvalidArgument("result of " + t.kind + " task " + t.id + ": " + what);
}

}  // namespace

Status Orchestrator::ApplyResult(stores::WriteTxn& txn, const Task& task,
                                 const std::string& result_json) {
  json res = json::parse(result_json, nullptr, false);
  json spec = json::parse(task.spec, nullptr, false);
  if (!res.is_object()) return BadResult(task, "not a JSON object");
  const Millis now = clock_->NowMs();
  try {
    if (task.kind == "generate") {
      if (!res.contains("responses") || !res["responses"].is_array()) {
        return BadResult(task, "'responses' must be an array");
      }
      std::map<std::string, json> prompts;
      for (const auto& p : spec["prompts"]) prompts[p["id"].get<std::string>()] = p;
      int64_t created = 0;
      for (const auto& r : res["responses"]) {
        std::string pid = r.at("prompt_id").get<std::string>();
        auto pit = prompts.find(pid);
        if (pit == prompts.end()) return BadResult(task, "unknown prompt_id '" + pid + "'");
        std::string a = r.at("a").get<std::string>(), b = r.at("b").get<std::string>();
        if (a == b) continue;  // nothing to compare
        stores::AnnotationRequest q;
        q.run_id = task.run;
        HERD_ASSIGN_OR_RETURN(q.id, store_->NewId("req"));
        q.round = static_cast<uint32_t>(task.round);
        q.prompt_id = pid;
        for (const auto& m : pit->second["messages"]) {
          q.prompt.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
        }
        // Show the two models in a seeded order, so position says nothing.
        bool swap = Hash64(task.run + pid + std::to_string(task.round)) & 1;
        q.response_a = swap ? b : a;
        q.response_b = swap ? a : b;
        q.checkpoint_a = spec["policy_ids"][swap ? 1 : 0].get<std::string>();
        q.checkpoint_b = spec["policy_ids"][swap ? 0 : 1].get<std::string>();
        q.state = "pending";
        q.created_ms = now;
        txn.PutAnnotationRequest(q);
        ++created;
      }
      txn.AddCounter("requests/" + task.run + "/" + std::to_string(task.round), created);
    } else if (task.kind == "rejection_sample") {
      if (!res.contains("samples") || !res["samples"].is_array()) {
        return BadResult(task, "'samples' must be an array");
      }
      std::map<std::string, std::pair<double, size_t>> best;  // prompt -> (score, index)
      std::vector<stores::Sample> samples;
      for (const auto& s : res["samples"]) {
        stores::Sample x;
        x.run_id = task.run;
        x.round = static_cast<uint32_t>(task.round);
        x.prompt_id = s.at("prompt_id").get<std::string>();
        x.idx = s.at("idx").get<uint32_t>();
        x.tokens = s.at("tokens").get<std::vector<int32_t>>();
        x.text = s.at("text").get<std::string>();
        x.logprob = s.value("logprob", 0.0);
        if (s.contains("rm_score") && s["rm_score"].is_number()) x.rm_score = s["rm_score"].get<double>();
        x.policy_checkpoint_id = spec.value("policy_id", "");
        x.rm_checkpoint_id = spec.value("rm_id", "");
        x.temperature = spec.value("temperature", 1.0f);
        x.seed = s.value("seed", uint64_t{0});
        x.task_id = task.id;
        x.created_ms = now;
        double score = x.rm_score.value_or(-1e300);
        auto it = best.find(x.prompt_id);
        if (it == best.end() || score > it->second.first) best[x.prompt_id] = {score, samples.size()};
        samples.push_back(std::move(x));
      }
      for (auto& [pid, b] : best) samples[b.second].selected = true;
      for (const auto& x : samples) txn.PutSample(x);
      txn.AddCounter("samples/" + task.run + "/" + std::to_string(task.round),
                     static_cast<int64_t>(samples.size()));
    } else if (task.kind == "train_rm" || task.kind == "train_sft" || task.kind == "train_dpo" ||
               task.kind == "average") {
      if (!res.contains("checkpoint") || !res["checkpoint"].is_object()) {
        return BadResult(task, "'checkpoint' must be an object");
      }
      const json& ck = res["checkpoint"];
      stores::Checkpoint c;
      c.id = spec.at("checkpoint_id").get<std::string>();
      c.run_id = task.run;
      HERD_ASSIGN_OR_RETURN(c.path, stores::ArtifactStore::CheckpointRelPath(task.run, c.id));
      c.sha256 = ck.value("sha256", "");
      c.config_hash = ck.value("config_sha256", "");
      c.size_bytes = ck.value("size_bytes", uint64_t{0});
      c.stage = task.stage;
      c.round = static_cast<uint32_t>(task.round);
      c.variant = spec.value("variant", "");
      c.parents = spec.value("parents", std::vector<std::string>{});
      c.datasets = spec.value("datasets", std::vector<std::string>{});
      if (spec.contains("hparams")) c.hyperparameters_json = spec["hparams"].dump();
      if (task.kind == "average") {
        // The weights as applied (greedy averaging may leave inputs out).
        const json& w = res.contains("weights") ? res["weights"] : spec.at("weights");
        c.averaging_weights = w.get<std::vector<double>>();
        if (c.averaging_weights.size() != spec.at("inputs").size()) {
          return BadResult(task, "'weights' must have one entry per input (" +
                                     std::to_string(spec.at("inputs").size()) + ")");
        }
      }
      if (res.contains("metrics")) c.metrics_json = res["metrics"].dump();
      c.created_ms = now;
      txn.PutCheckpoint(c);
    }
  } catch (const json::exception& e) {
    return BadResult(task, e.what());
  }
  return Status::Ok();
}

// ---- the round state machine -------------------------------------------------------

namespace {

// A seeded selection of n prompts of a split (0 = all). With `repeat`, n
// may exceed the split: the prompts come round again, each pass in its own
// seeded order (annotation requests: several comparisons per prompt).
std::vector<stores::Prompt> SelectPrompts(stores::Store* store, const std::string& run,
                                          const std::string& split, int64_t n,
                                          const std::string& salt, Status* err,
                                          bool repeat = false) {
  std::vector<stores::Prompt> split_prompts;
  *err = store->ForEachPrompt(run, [&](const stores::Prompt& p) {
    if (p.split == split) split_prompts.push_back(p);
    return true;
  });
  std::vector<stores::Prompt> out;
  if (split_prompts.empty()) return out;
  const auto want = n > 0 ? static_cast<size_t>(n) : split_prompts.size();
  for (int pass = 0; out.size() < want; ++pass) {
    const std::string s = pass == 0 ? salt : salt + "/pass" + std::to_string(pass);
    std::vector<std::pair<uint64_t, const stores::Prompt*>> order;
    for (const auto& p : split_prompts) order.emplace_back(Hash64(s + "/" + p.id), &p);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->id < b.second->id;
    });
    for (const auto& [h, p] : order) {
      if (out.size() == want) break;
      out.push_back(*p);
    }
    if (!repeat) break;
  }
  return out;
}

json PromptsJson(const std::vector<stores::Prompt>& ps, size_t begin, size_t end) {
  json a = json::array();
  for (size_t i = begin; i < end && i < ps.size(); ++i) {
    a.push_back({{"id", ps[i].id}, {"messages", MessagesJson(ps[i].messages)}});
  }
  return a;
}

json PairJson(const stores::Pair& p) {
  json j = {{"id", p.id}, {"prompt", MessagesJson(p.prompt)}, {"chosen", p.chosen},
            {"rejected", p.rejected}, {"strength", p.strength}};
  if (p.edited) j["edited"] = *p.edited;
  return j;
}

}  // namespace

Status Orchestrator::Tick() {
  auto n = scheduler_->ExpireLeases(TaskCommit());
  if (!n.ok()) spdlog::warn("lease expiry failed: {}", n.status().ToString());
  std::vector<std::string> runs;
  HERD_RETURN_IF_ERROR(ForEachRun(store_, [&](const stores::Run& r) {
    if (r.state == "running") runs.push_back(r.id);
  }));
  for (const auto& id : runs) {
    Status s = AdvanceRun(id);
    if (!s.ok()) spdlog::warn("run={} advance failed: {}", id, s.ToString());
  }
  return Status::Ok();
}

Status Orchestrator::AdvanceRun(const std::string& run_id) {
  std::lock_guard<std::mutex> l(mu_);
  RunCtx ctx;
  HERD_ASSIGN_OR_RETURN(ctx.run, store_->GetRun(run_id));
  if (ctx.run.state != "running") return Status::Ok();
  HERD_ASSIGN_OR_RETURN(ctx.cfg, ParseRunConfig(ctx.run.config_json));
  HERD_RETURN_IF_ERROR(store_->ForEachCheckpoint(run_id, [&](const stores::Checkpoint& c) {
    if (c.stage == "base") ctx.base_checkpoint_id = c.id;
    return true;
  }));
  if (ctx.base_checkpoint_id.empty()) return Status::Internal("run " + run_id + " has no base checkpoint");
  HERD_ASSIGN_OR_RETURN(stores::Round round, store_->GetRound(run_id, ctx.run.current_round));
  for (int guard = 0; guard < 4 * kNumStages; ++guard) {
    size_t i = 0;
    while (i < round.stages.size() && round.stages[i].state == "succeeded") ++i;
    if (i == round.stages.size()) return Status::Ok();  // FinishStage moved the run on
    stores::StageStatus& st = round.stages[i];
    if (st.state == "failed") return Status::Ok();
    if (st.state == "pending") {
      HERD_RETURN_IF_ERROR(StartStage(ctx, round, i));
      if (round.stages[i].state != "succeeded") return Status::Ok();
    } else {
      bool advanced = false;
      HERD_RETURN_IF_ERROR(CheckStage(ctx, round, i, &advanced));
      if (!advanced) return Status::Ok();
    }
    if (ctx.run.state != "running") return Status::Ok();
    if (ctx.run.current_round != round.round) {
      HERD_ASSIGN_OR_RETURN(round, store_->GetRound(run_id, ctx.run.current_round));
    }
  }
  return Status::Ok();
}

Status Orchestrator::StartStage(RunCtx& ctx, stores::Round& round, size_t i) {
  const RunConfig& cfg = ctx.cfg;
  const std::string& run = ctx.run.id;
  const uint32_t r = round.round;
  const Millis now = clock_->NowMs();
  const std::string salt = run + "/r" + std::to_string(r);
  const int32_t prio = opts_.prioritise_later_stages ? static_cast<int32_t>(i) : 0;

  // The round's policy: the previous round's DPO model, or the base.
  auto policy_of = [&](uint32_t rr) -> Result<std::string> {
    if (rr == 0) return ctx.base_checkpoint_id;
    HERD_ASSIGN_OR_RETURN(stores::Round prev, store_->GetRound(run, rr));
    return prev.stages[kDpo].checkpoint_id;
  };
  auto path_of = [&](const std::string& ck) -> Result<std::string> {
    HERD_ASSIGN_OR_RETURN(stores::Checkpoint c, store_->GetCheckpoint(ck));
    if (c.stage == "base") return c.path;  // the user's model, outside the artifact root
    return artifacts_->Resolve(c.path);
  };
  auto new_task = [&](const char* kind, json spec) {
    Task t;
    t.run = run;
    t.round = r;
    t.stage = kStages[i];
    t.kind = kind;
    t.spec = spec.dump();
    t.priority = prio;
    t.max_attempts = static_cast<int32_t>(cfg.max_attempts);
    t.needs.device = cfg.workers.device;
    t.needs.min_memory_bytes = cfg.workers.min_memory_bytes;
    return t;
  };

  std::vector<Task> tasks;
  std::vector<stores::DatasetMember> members;
  stores::StageStatus& st = round.stages[i];
  Status err;

  if (i == kCollect) {
    auto prompts = SelectPrompts(store_, run, "train", cfg.annotation.comparisons_per_round,
                                 salt + "/collect", &err, /*repeat=*/true);
    HERD_RETURN_IF_ERROR(err);
    if (cfg.annotation.comparisons_per_round == 0 || prompts.empty()) {
      return FinishStage(ctx, round, i, "", json{{"requests", 0}}.dump());
    }
    // Two different recent models (§4.2.1): this round's policy and the one
    // before it; in round 1 only the base exists, sampled twice.
    HERD_ASSIGN_OR_RETURN(std::string a, policy_of(r - 1));
    HERD_ASSIGN_OR_RETURN(std::string b, policy_of(r >= 2 ? r - 2 : 0));
    HERD_ASSIGN_OR_RETURN(std::string pa, path_of(a));
    HERD_ASSIGN_OR_RETURN(std::string pb, path_of(b));
    const size_t per = static_cast<size_t>(cfg.rejection_sampling.prompts_per_task);
    for (size_t b0 = 0; b0 < prompts.size(); b0 += per) {
      tasks.push_back(new_task(
          "generate", {{"policies", {pa, pb}},
                       {"policy_ids", {a, b}},
                       {"prompts", PromptsJson(prompts, b0, b0 + per)},
                       {"temperature", cfg.annotation.temperature},
                       {"top_p", 1.0},
                       {"max_new_tokens", cfg.annotation.max_new_tokens},
                       {"seed", Hash64(salt + "/collect/" + std::to_string(b0))}}));
    }
  } else if (i == kSft && !cfg.rejection_sampling.enabled) {
    // Ablation without rejection sampling: no SFT data; the previous
    // policy carries over and DPO trains from it.
    HERD_ASSIGN_OR_RETURN(std::string prev, policy_of(r - 1));
    return FinishStage(ctx, round, i, prev, json{{"skipped", true}}.dump());
  } else if (i == kDpo && !cfg.dpo.enabled) {
    // Ablation without DPO: the SFT model is the round's policy.
    return FinishStage(ctx, round, i, round.stages[kSft].checkpoint_id, json{{"skipped", true}}.dump());
  } else if (i == kRm || i == kSft || i == kDpo) {
    const StageConfig& sc = StageCfg(cfg, i);
    std::string base_id, ref_id;
    std::vector<std::string> datasets;
    json extra = json::object();
    HERD_ASSIGN_OR_RETURN(std::string dataset_path,
                          artifacts_->MakeDatasetPath(run, std::string(kStages[i]) + "-r" + std::to_string(r)));
    std::vector<json> rows;
    if (i == kRm) {
      // All preference data so far, minus a seeded held-out share for RM
      // accuracy and, for greedy averaging, a validation share to choose by.
      // A pair's share depends on its id only, so it never moves.
      std::vector<json> heldout, val;
      const auto& rmc = cfg.reward_model;
      const bool greedy = rmc.averaging == "greedy";
      HERD_RETURN_IF_ERROR(store_->ForEachPair(run, std::nullopt, [&](const stores::Pair& p) {
        if (p.round > r) return true;
        double u = static_cast<double>(Hash64(run + "/heldout/" + p.id) % 1000000) / 1e6;
        // Held out pairs of the training strengths only: accuracy on
        // "marginally better" coin flips says nothing about the RM.
        const bool trained = std::find(rmc.strengths.begin(), rmc.strengths.end(), p.strength) != rmc.strengths.end();
        if (u < rmc.held_out_fraction) {
          if (!trained) return true;
          heldout.push_back(PairJson(p));
          members.push_back({run, r, "rm_heldout", p.round, p.id, 0});
        } else if (greedy && u < rmc.held_out_fraction + rmc.val_fraction) {
          if (!trained) return true;
          val.push_back(PairJson(p));
          members.push_back({run, r, "rm_val", p.round, p.id, 0});
        } else {
          rows.push_back(PairJson(p));
          members.push_back({run, r, "rm", p.round, p.id, 0});
        }
        return true;
      }));
      HERD_ASSIGN_OR_RETURN(std::string hp, artifacts_->MakeDatasetPath(run, "rm-heldout-r" + std::to_string(r)));
      HERD_RETURN_IF_ERROR(WriteJsonl(hp, heldout));
      if (greedy) {
        HERD_ASSIGN_OR_RETURN(std::string vp, artifacts_->MakeDatasetPath(run, "rm-val-r" + std::to_string(r)));
        HERD_RETURN_IF_ERROR(WriteJsonl(vp, val));
      }
      if (rows.empty()) return FailStage(ctx, round, i, "no preference pairs to train the reward model on");
      // The RM starts from the pre-trained checkpoint (§4.1.2), or goes on
      // from the previous round's RM.
      base_id = ctx.base_checkpoint_id;
      if (rmc.init == "previous" && r > 1) {
        HERD_ASSIGN_OR_RETURN(stores::Round prev, store_->GetRound(run, r - 1));
        base_id = prev.stages[kRm].checkpoint_id;
      }
      extra = {{"strengths", cfg.reward_model.strengths}, {"margin", cfg.reward_model.margin}};
      datasets = {"rm:r" + std::to_string(r)};
    } else if (i == kSft) {
      // The accumulated best-of-K samples of every round so far (§4.1.3).
      std::map<std::string, stores::Prompt> prompts;
      HERD_RETURN_IF_ERROR(store_->ForEachPrompt(run, [&](const stores::Prompt& p) {
        prompts[p.id] = p;
        return true;
      }));
      HERD_RETURN_IF_ERROR(store_->ForEachSample(run, std::nullopt, [&](const stores::Sample& s) {
        if (!s.selected || s.round > r) return true;
        auto it = prompts.find(s.prompt_id);
        if (it == prompts.end()) return true;
        json msgs = MessagesJson(it->second.messages);
        msgs.push_back({{"role", "assistant"}, {"content", s.text}});
        rows.push_back({{"id", s.prompt_id + "/r" + std::to_string(s.round) + "/" + std::to_string(s.idx)},
                        {"messages", msgs}});
        members.push_back({run, r, "sft", s.round, s.prompt_id, s.idx});
        return true;
      }));
      if (rows.empty()) return FailStage(ctx, round, i, "no selected samples to fine-tune on");
      base_id = ctx.base_checkpoint_id;  // SFT restarts from the pre-trained checkpoint
      datasets = {"sft:r" + std::to_string(r)};
    } else {
      const uint32_t first = r > static_cast<uint32_t>(cfg.dpo.recent_rounds)
                                 ? r - static_cast<uint32_t>(cfg.dpo.recent_rounds) + 1
                                 : 1;
      HERD_RETURN_IF_ERROR(store_->ForEachPair(run, std::nullopt, [&](const stores::Pair& p) {
        if (p.round < first || p.round > r) return true;
        rows.push_back(PairJson(p));
        members.push_back({run, r, "dpo", p.round, p.id, 0});
        return true;
      }));
      if (rows.empty()) return FailStage(ctx, round, i, "no preference pairs for DPO");
      base_id = round.stages[kSft].checkpoint_id;  // DPO starts from this round's SFT model,
      ref_id = base_id;                            // which is also the frozen reference
      extra = {{"beta", cfg.dpo.beta},
               {"nll_alpha", cfg.dpo.nll_alpha},
               {"mask_formatting", cfg.dpo.mask_formatting},
               {"strengths", cfg.dpo.strengths}};
      datasets = {"dpo:r" + std::to_string(r)};
    }
    HERD_RETURN_IF_ERROR(WriteJsonl(dataset_path, rows));
    HERD_ASSIGN_OR_RETURN(std::string base_path, path_of(base_id));
    for (const Variant& v : sc.variants) {
      HERD_ASSIGN_OR_RETURN(std::string ck, store_->NewId("ckpt"));
      HERD_ASSIGN_OR_RETURN(std::string out, artifacts_->MakeCheckpointDir(run, ck));
      json spec = {{"base", base_path},      {"dataset", dataset_path}, {"out", out},
                   {"checkpoint_id", ck},    {"variant", v.name},       {"hparams", HparamsJson(v.hp)},
                   {"parents", {base_id}},   {"datasets", datasets},    {"seed", v.hp.seed}};
      if (!ref_id.empty()) {
        HERD_ASSIGN_OR_RETURN(spec["ref"], path_of(ref_id));
      }
      if (i == kRm) {
        HERD_ASSIGN_OR_RETURN(spec["heldout"], artifacts_->MakeDatasetPath(run, "rm-heldout-r" + std::to_string(r)));
      }
      spec.update(extra);
      tasks.push_back(new_task(TrainKind(i), spec));
    }
  } else if (i == kRs && !cfg.rejection_sampling.enabled) {
    return FinishStage(ctx, round, i, "", json{{"skipped", true}}.dump());
  } else if (i == kRs) {
    auto prompts = SelectPrompts(store_, run, "train", cfg.rejection_sampling.prompts_per_round,
                                 salt + "/rs", &err);
    HERD_RETURN_IF_ERROR(err);
    if (prompts.empty()) return FailStage(ctx, round, i, "the run has no train prompts");
    HERD_ASSIGN_OR_RETURN(std::string policy, policy_of(r - 1));
    const std::string rm = round.stages[kRm].checkpoint_id;
    HERD_ASSIGN_OR_RETURN(std::string policy_path, path_of(policy));
    HERD_ASSIGN_OR_RETURN(std::string rm_path, path_of(rm));
    const auto& rs = cfg.rejection_sampling;
    const size_t per = static_cast<size_t>(rs.prompts_per_task);
    for (size_t b0 = 0; b0 < prompts.size(); b0 += per) {
      tasks.push_back(new_task("rejection_sample",
                               {{"policy", policy_path},
                                {"policy_id", policy},
                                {"rm", rm_path},
                                {"rm_id", rm},
                                {"prompts", PromptsJson(prompts, b0, b0 + per)},
                                {"k", rs.k},
                                {"temperature", rs.temperature},
                                {"top_p", rs.top_p},
                                {"top_k", rs.top_k},
                                {"max_new_tokens", rs.max_new_tokens},
                                {"kv_budget_bytes", rs.kv_budget_bytes},
                                {"seed", Hash64(salt + "/rs/" + std::to_string(b0))}}));
    }
  } else if (i == kEval) {
    auto prompts = SelectPrompts(store_, run, "eval", cfg.eval.prompts, "eval", &err);
    HERD_RETURN_IF_ERROR(err);
    HERD_ASSIGN_OR_RETURN(std::string prev, policy_of(r - 1));
    const std::string policy = round.stages[kDpo].checkpoint_id;
    HERD_ASSIGN_OR_RETURN(std::string policy_path, path_of(policy));
    HERD_ASSIGN_OR_RETURN(std::string prev_path, path_of(prev));
    HERD_ASSIGN_OR_RETURN(std::string rm_path, path_of(round.stages[kRm].checkpoint_id));
    HERD_ASSIGN_OR_RETURN(std::string base_path, path_of(ctx.base_checkpoint_id));
    HERD_ASSIGN_OR_RETURN(std::string heldout, artifacts_->MakeDatasetPath(run, "rm-heldout-r" + std::to_string(r)));
    tasks.push_back(new_task("eval", {{"policy", policy_path},
                                      {"previous", prev_path},
                                      {"base", base_path},
                                      {"rm", rm_path},
                                      {"rm_heldout", heldout},
                                      {"prompts", PromptsJson(prompts, 0, prompts.size())},
                                      {"checker", cfg.eval.checker},
                                      {"samples_per_prompt", cfg.eval.samples_per_prompt},
                                      {"max_new_tokens", cfg.rejection_sampling.max_new_tokens},
                                      {"temperature", cfg.rejection_sampling.temperature},
                                      {"seed", Hash64(salt + "/eval")}}));
  }

  st.state = "running";
  st.started_ms = now;
  st.tasks_total = tasks.size();
  st.tasks_done = 0;
  round.updated_ms = now;
  ctx.run.current_stage = kStages[i];
  ctx.run.updated_ms = now;
  auto fill = [&](stores::WriteTxn& txn) -> Status {
    txn.PutRound(round);
    txn.PutRun(ctx.run);
    for (const auto& m : members) txn.PutDatasetMember(m);
    txn.AppendEvent({run, 0, now, "stage.started",
                     "round " + std::to_string(r) + " " + kStages[i] + " started with " +
                         std::to_string(tasks.size()) + " tasks", ""});
    return Status::Ok();
  };
  spdlog::info("run={} round={} stage={} started tasks={}", run, r, kStages[i], tasks.size());
  return SubmitTasks(std::move(tasks), fill);
}

Status Orchestrator::CheckStage(RunCtx& ctx, stores::Round& round, size_t i, bool* advanced) {
  *advanced = false;
  const std::string& run = ctx.run.id;
  const uint32_t r = round.round;
  auto tasks = scheduler_->List([&](const Task& t) {
    return t.run == run && t.round == r && t.stage == kStages[i];
  });
  uint64_t done = 0;
  for (const Task& t : tasks) {
    if (t.state == TaskState::kFailed) {
      return FailStage(ctx, round, i, t.kind + " task " + t.id + " failed: " + t.error);
    }
    if (t.state == TaskState::kCancelled) return Status::Ok();
    if (t.state == TaskState::kSucceeded) ++done;
  }
  stores::StageStatus& st = round.stages[i];
  st.tasks_done = done;
  const bool all_done = done == tasks.size();

  if (i == kCollect) {
    if (!all_done) return Status::Ok();
    HERD_ASSIGN_OR_RETURN(uint64_t answers, store_->GetCounter("answers/" + run + "/" + std::to_string(r)));
    HERD_ASSIGN_OR_RETURN(uint64_t requests, store_->GetCounter("requests/" + run + "/" + std::to_string(r)));
    const uint64_t need = std::min<uint64_t>(static_cast<uint64_t>(ctx.cfg.annotation.min_answers), requests);
    if (answers < need) return Status::Ok();  // waiting for humans
    *advanced = true;
    return FinishStage(ctx, round, i, "",
                       json{{"requests", requests}, {"answers", answers}}.dump());
  }

  if (i == kRm || i == kSft || i == kDpo) {
    const StageConfig& sc = StageCfg(ctx.cfg, i);
    std::vector<const Task*> train;
    const Task* avg = nullptr;
    for (const Task& t : tasks) {
      if (t.kind == "average") avg = &t;
      else train.push_back(&t);
    }
    if (avg) {
      if (avg->state != TaskState::kSucceeded) return Status::Ok();
      *advanced = true;
      json spec = json::parse(avg->spec);
      // The variants' metrics, averaged, stand for the stage.
      json metrics = json::object();
      for (const Task* t : train) {
        json m = json::parse(t->result, nullptr, false);
        if (!m.is_object() || !m.contains("metrics")) continue;
        for (auto& [k, v] : m["metrics"].items()) {
          if (v.is_number()) metrics[k] = metrics.value(k, 0.0) + v.get<double>() / static_cast<double>(train.size());
        }
      }
      json am = json::parse(avg->result, nullptr, false);
      if (am.is_object() && am.contains("metrics")) metrics["averaged"] = am["metrics"];
      // Retention: the averaged model stays; variant checkpoints go unless kept.
      if (!ctx.cfg.retention.keep_variants) {
        for (const auto& parent : spec["parents"]) {
          auto c = store_->GetCheckpoint(parent.get<std::string>());
          if (!c.ok()) continue;
          Status ds = artifacts_->DeleteCheckpoint(run, c->id);
          if (ds.ok()) {
            stores::WriteTxn txn = store_->NewTxn();
            txn.DeleteCheckpoint(c->id);
            ds = store_->Commit(txn);
          }
          if (!ds.ok()) spdlog::warn("run={} could not delete variant {}: {}", run, c->id, ds.ToString());
        }
      }
      return FinishStage(ctx, round, i, spec["checkpoint_id"].get<std::string>(), metrics.dump());
    }
    if (!all_done) return Status::Ok();
    if (train.size() == 1) {
      *advanced = true;
      json spec = json::parse(train[0]->spec);
      json res = json::parse(train[0]->result, nullptr, false);
      return FinishStage(ctx, round, i, spec["checkpoint_id"].get<std::string>(),
                         res.is_object() && res.contains("metrics") ? res["metrics"].dump() : "{}");
    }
    // Every variant trained: average them (§4.1.5).
    HERD_ASSIGN_OR_RETURN(std::string ck, store_->NewId("ckpt"));
    HERD_ASSIGN_OR_RETURN(std::string out, artifacts_->MakeCheckpointDir(run, ck));
    json inputs = json::array(), parents = json::array();
    for (const Task* t : train) {
      json s = json::parse(t->spec);
      inputs.push_back(s["out"]);
      parents.push_back(s["checkpoint_id"]);
    }
    json spec0 = json::parse(train[0]->spec);
    json avg_spec = {{"inputs", inputs},   {"weights", sc.average_weights}, {"out", out},
                     {"checkpoint_id", ck}, {"parents", parents},           {"datasets", spec0["datasets"]}};
    if (i == kRm && sc.averaging == "greedy") {
      // Greedy averaging chooses by accuracy on the round's validation pairs.
      HERD_ASSIGN_OR_RETURN(std::string vp, artifacts_->MakeDatasetPath(run, "rm-val-r" + std::to_string(r)));
      const json& h = spec0["hparams"];
      avg_spec["select"] = {{"dataset", vp},
                            {"strengths", ctx.cfg.reward_model.strengths},
                            {"batch_rows", h.value("batch_rows", int64_t{8})},
                            {"seq_len", h.value("seq_len", int64_t{512})}};
    }
    Task t;
    t.run = run;
    t.round = r;
    t.stage = kStages[i];
    t.kind = "average";
    t.spec = avg_spec.dump();
    t.priority = train[0]->priority;
    t.max_attempts = static_cast<int32_t>(ctx.cfg.max_attempts);
    t.needs = train[0]->needs;
    st.tasks_total += 1;
    round.updated_ms = clock_->NowMs();
    return SubmitTasks({t}, [&](stores::WriteTxn& txn) {
      txn.PutRound(round);
      return Status::Ok();
    });
  }

  if (!all_done) return Status::Ok();
  *advanced = true;
  if (i == kRs) {
    // Best-of-K against a random draw (sample 0: draws are exchangeable).
    double best = 0, random = 0;
    int64_t prompts = 0, samples = 0;
    std::string cur;
    HERD_RETURN_IF_ERROR(store_->ForEachSample(run, r, [&](const stores::Sample& s) {
      ++samples;
      if (s.selected && s.rm_score) {
        best += *s.rm_score;
        ++prompts;
      }
      if (s.idx == 0 && s.rm_score) random += *s.rm_score;
      return true;
    }));
    json m = {{"samples", samples}, {"prompts", prompts}};
    if (prompts > 0) {
      m["best_of_k_rm_score"] = best / static_cast<double>(prompts);
      m["random_rm_score"] = random / static_cast<double>(prompts);
    }
    return FinishStage(ctx, round, i, "", m.dump());
  }
  // eval
  json res = tasks.empty() ? json::object() : json::parse(tasks[0].result, nullptr, false);
  return FinishStage(ctx, round, i, "",
                     res.is_object() && res.contains("metrics") ? res["metrics"].dump() : "{}");
}

Status Orchestrator::FinishStage(RunCtx& ctx, stores::Round& round, size_t i,
                                 const std::string& checkpoint_id, const std::string& metrics_json) {
  const Millis now = clock_->NowMs();
  stores::StageStatus& st = round.stages[i];
  st.state = "succeeded";
  st.checkpoint_id = checkpoint_id;
  st.metrics_json = metrics_json;
  if (st.started_ms == 0) st.started_ms = now;
  st.finished_ms = now;
  st.tasks_done = st.tasks_total;
  json rm = json::parse(round.metrics_json.empty() ? "{}" : round.metrics_json, nullptr, false);
  if (!rm.is_object()) rm = json::object();
  rm[kStages[i]] = json::parse(metrics_json.empty() ? "{}" : metrics_json, nullptr, false);
  rm[kStages[i]]["wall_s"] = static_cast<double>(st.finished_ms - st.started_ms) / 1000.0;
  round.metrics_json = rm.dump();
  round.updated_ms = now;
  stores::WriteTxn txn = store_->NewTxn();
  std::string what = "round " + std::to_string(round.round) + " " + kStages[i] + " succeeded";
  if (i + 1 == round.stages.size()) {
    round.state = "succeeded";
    if (round.round < static_cast<uint32_t>(ctx.cfg.rounds)) {
      ctx.run.current_round = round.round + 1;
      ctx.run.current_stage = kStages[0];
      txn.PutRound(NewRound(ctx.run.id, ctx.run.current_round, now));
    } else {
      ctx.run.state = "succeeded";
      ctx.run.current_stage = "";
    }
  } else {
    ctx.run.current_stage = kStages[i + 1];
  }
  ctx.run.updated_ms = now;
  txn.PutRound(round);
  txn.PutRun(ctx.run);
  txn.AppendEvent({ctx.run.id, 0, now, "stage.succeeded", what, metrics_json});
  if (ctx.run.state == "succeeded") {
    txn.AppendEvent({ctx.run.id, 0, now, "run.succeeded", "run finished all rounds", ""});
  }
  spdlog::info("run={} {}", ctx.run.id, what);
  return store_->Commit(txn);
}

Status Orchestrator::FailStage(RunCtx& ctx, stores::Round& round, size_t i, const std::string& why) {
  const Millis now = clock_->NowMs();
  stores::StageStatus& st = round.stages[i];
  st.state = "failed";
  st.error = why;
  st.finished_ms = now;
  round.state = "failed";
  round.updated_ms = now;
  ctx.run.state = "failed";
  ctx.run.error = "round " + std::to_string(round.round) + " " + kStages[i] + ": " + why;
  ctx.run.updated_ms = now;
  stores::WriteTxn txn = store_->NewTxn();
  txn.PutRound(round);
  txn.PutRun(ctx.run);
  txn.AppendEvent({ctx.run.id, 0, now, "stage.failed", ctx.run.error, ""});
  spdlog::error("run={} {}", ctx.run.id, ctx.run.error);
  return store_->Commit(txn);
}

// ---- background ---------------------------------------------------------------------

void Orchestrator::StartBackground(Millis period_ms) {
  std::lock_guard<std::mutex> l(bg_mu_);
  if (bg_) return;
  bg_stop_ = false;
  bg_ = std::make_unique<std::thread>([this, period_ms] {
    std::unique_lock<std::mutex> l(bg_mu_);
    while (!bg_stop_) {
      bg_cv_.wait_for(l, std::chrono::milliseconds(period_ms), [&] { return bg_stop_ || bg_kicked_; });
      if (bg_stop_) break;
      bg_kicked_ = false;
      l.unlock();
      Status s = Tick();
      if (!s.ok()) spdlog::warn("tick failed: {}", s.ToString());
      l.lock();
    }
  });
}

void Orchestrator::StopBackground() {
  std::unique_ptr<std::thread> t;
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    bg_stop_ = true;
    bg_cv_.notify_all();
    t = std::move(bg_);
  }
  if (t && t->joinable()) t->join();
}

void Orchestrator::Kick() {
  std::lock_guard<std::mutex> l(bg_mu_);
  bg_kicked_ = true;  // without a background thread, callers Tick() themselves
  bg_cv_.notify_all();
}

}  // namespace herd::daemon
