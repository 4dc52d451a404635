#include "daemon/orchestrator.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "stores/artifacts.h"
#include "common/sha256.h"
#include "stores/store.h"
#include "tasks/common.h"
#include "tasks/protocol.h"
#include "workers/model/chat_format.h"

namespace herd::daemon {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// ---- daemon task <-> stored task --------------------------------------------

stores::Task ToStore(const Task& t) {
  stores::Task s;
  s.id = t.id;
  s.run_id = t.run;
  s.round = static_cast<uint32_t>(t.round);
  s.stage = t.stage;
  s.kind = t.kind;
  s.spec_json = t.spec;
  s.requirements_json = tasks::Encode(t.needs);
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
  t.needs = tasks::DecodeRequirements(s.requirements_json);
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
        HERD_RETURN_IF_ERROR(ApplyResult(txn, c.after));
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
  // The tokenizer and chat format every task will use: a run that could
  // only fail later in a worker is refused now, saying why.
  if (!cfg.tokenizer.empty()) cfg.tokenizer = fs::absolute(cfg.tokenizer).string();
  {
    auto format = model::LoadChatFormatter(cfg.base_checkpoint, {cfg.tokenizer, cfg.chat_format});
    if (!format.ok()) {
      return Status::InvalidArgument(std::string(cfg.tokenizer.empty() ? "base_checkpoint" : "tokenizer") +
                                     ": " + format.status().message());
    }
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
  // A failed stage fails its run; a run cancelled since stays cancelled.
  if (run.state != "failed") {
    return Status::FailedPrecondition("run " + run_id + " is " + run.state +
                                      "; only a failed run's stages can be retried");
  }
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
    txn.AddCounter(stages::CounterKey("answers", run_id, round), 1);
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
  txn.AddCounter(stages::CounterKey("answers", run_id, req.round), 1);
  HERD_RETURN_IF_ERROR(store_->Commit(txn));
  Kick();
  return Status::Ok();
}

// ---- worker protocol -----------------------------------------------------------

Result<WorkerInfo> Orchestrator::RegisterWorker(WorkerInfo w) {
  // A worker that reads specs differently must not take tasks.
  HERD_RETURN_IF_ERROR(tasks::CheckProtocol(w.protocol, "worker"));
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
  auto reply = scheduler_->Heartbeat(lease_id, progress_json);
  // A worker busy on one long task is alive: its heartbeats say so.
  Task t;
  if (reply.ok() && scheduler_->CheckLease(lease_id, &t) == LeaseCheck::kCurrent) {
    std::lock_guard<std::mutex> l(workers_mu_);
    for (WorkerInfo& w : workers_) {
      if (w.id == t.worker_id) w.last_seen_ms = clock_->NowMs();
    }
  }
  return reply;
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

Status Orchestrator::ApplyResult(stores::WriteTxn& txn, const Task& task) {
  stages::Stage* stage = stages::Find(task.stage);
  if (!stage) return Status::Ok();  // not a stage's task (e.g. noop)
  return stage->Apply({store_, clock_->NowMs()}, txn, task);
}

// ---- the round state machine -------------------------------------------------------

Status Orchestrator::Tick() {
  auto n = scheduler_->ExpireLeases(TaskCommit());
  if (!n.ok()) spdlog::warn("lease expiry failed: {}", n.status().ToString());
  std::vector<std::string> runs, open;
  HERD_RETURN_IF_ERROR(ForEachRun(store_, [&](const stores::Run& r) {
    if (r.state == "running") runs.push_back(r.id);
    if (r.state == "running" || r.state == "paused") open.push_back(r.id);
  }));
  // Unanswered annotation requests expire, checked every few seconds (a
  // scan of the pending ones), before the runs advance on the counts.
  const Millis now = clock_->NowMs();
  if (now - last_request_sweep_ms_ >= kRequestSweepPeriodMs) {
    last_request_sweep_ms_ = now;
    for (const auto& id : open) {
      Status s = ExpireRequests(id);
      if (!s.ok()) spdlog::warn("run={} request expiry failed: {}", id, s.ToString());
    }
  }
  for (const auto& id : runs) {
    Status s = AdvanceRun(id);
    if (!s.ok()) spdlog::warn("run={} advance failed: {}", id, s.ToString());
  }
  return Status::Ok();
}

Status Orchestrator::ExpireRequests(const std::string& run_id) {
  std::lock_guard<std::mutex> l(mu_);
  HERD_ASSIGN_OR_RETURN(stores::Run run, store_->GetRun(run_id));
  HERD_ASSIGN_OR_RETURN(RunConfig cfg, ParseRunConfig(run.config_json));
  if (cfg.annotation.request_ttl_s <= 0) return Status::Ok();
  const Millis now = clock_->NowMs();
  const Millis ttl_ms = cfg.annotation.request_ttl_s * 1000;
  std::vector<stores::AnnotationRequest> due;
  stores::PageRequest page{.page_size = 1000};
  do {
    HERD_ASSIGN_OR_RETURN(auto p, store_->ListAnnotationRequests(run_id, "pending", page));
    for (auto& q : p.items) {
      if (q.state == "pending" && now - q.created_ms >= ttl_ms) due.push_back(std::move(q));
    }
    page.page_token = p.next_page_token;
  } while (!page.page_token.empty());
  if (due.empty()) return Status::Ok();
  stores::WriteTxn txn = store_->NewTxn();
  std::map<uint32_t, uint64_t> per_round;
  for (auto& q : due) {
    q.state = "expired";
    txn.PutAnnotationRequest(q);
    ++per_round[q.round];
  }
  for (const auto& [round, count] : per_round) {
    txn.AddCounter(stages::CounterKey("expired", run_id, round), count);
  }
  txn.AppendEvent({run_id, 0, now, "annotation_requests.expired",
                   std::to_string(due.size()) + " annotation requests unanswered after " +
                       std::to_string(cfg.annotation.request_ttl_s) + " s expired",
                   ""});
  return store_->Commit(txn);
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

stages::RunView Orchestrator::View(RunCtx& ctx, stores::Round& round, size_t i) {
  const int32_t prio = opts_.prioritise_later_stages ? static_cast<int32_t>(i) : 0;
  return stages::RunView{ctx.run, ctx.cfg, ctx.base_checkpoint_id, round, store_, artifacts_,
                         clock_->NowMs(), prio};
}

Status Orchestrator::StartStage(RunCtx& ctx, stores::Round& round, size_t i) {
  stages::RunView view = View(ctx, round, i);
  HERD_ASSIGN_OR_RETURN(stages::Plan plan, stages::Loop()[i]->Start(view));
  if (plan.kind == stages::Plan::Kind::kFinished) {
    return FinishStage(ctx, round, i, plan.checkpoint_id, plan.metrics_json);
  }
  if (plan.kind == stages::Plan::Kind::kFailed) return FailStage(ctx, round, i, plan.error);
  const std::string& run = ctx.run.id;
  const Millis now = view.now;
  stores::StageStatus& st = round.stages[i];
  st.state = "running";
  st.started_ms = now;
  st.tasks_total = plan.tasks.size();
  st.tasks_done = 0;
  round.updated_ms = now;
  ctx.run.current_stage = kStages[i];
  ctx.run.updated_ms = now;
  const size_t n = plan.tasks.size();
  auto fill = [&](stores::WriteTxn& txn) -> Status {
    txn.PutRound(round);
    txn.PutRun(ctx.run);
    for (const auto& m : plan.members) txn.PutDatasetMember(m);
    txn.AppendEvent({run, 0, now, "stage.started",
                     "round " + std::to_string(round.round) + " " + kStages[i] + " started with " +
                         std::to_string(n) + " tasks", ""});
    return Status::Ok();
  };
  spdlog::info("run={} round={} stage={} started tasks={}", run, round.round, kStages[i], n);
  return SubmitTasks(std::move(plan.tasks), fill);
}

Status Orchestrator::CheckStage(RunCtx& ctx, stores::Round& round, size_t i, bool* advanced) {
  *advanced = false;
  const std::string& run = ctx.run.id;
  const uint32_t r = round.round;
  // This start's tasks: a stage started again after a corrupt checkpoint
  // leaves its earlier tasks behind (they stay listed, as history).
  const Millis started = round.stages[i].started_ms;
  auto tasks = scheduler_->List([&](const Task& t) {
    return t.run == run && t.round == r && t.stage == kStages[i] && t.created_ms >= started;
  });
  uint64_t done = 0;
  for (const Task& t : tasks) {
    if (t.state == TaskState::kFailed) {
      if (auto ck = CorruptInput(ctx, round, i, t)) return RestartAfterCorrupt(ctx, round, i, t, *ck);
      return FailStage(ctx, round, i, t.kind + " task " + t.id + " failed: " + t.error);
    }
    if (t.state == TaskState::kCancelled) return Status::Ok();
    if (t.state == TaskState::kSucceeded) ++done;
  }
  round.stages[i].tasks_done = done;
  stages::RunView view = View(ctx, round, i);
  HERD_ASSIGN_OR_RETURN(stages::Verdict verdict, stages::Loop()[i]->Check(view, tasks));
  switch (verdict.kind) {
    case stages::Verdict::Kind::kWaiting:
      return Status::Ok();
    case stages::Verdict::Kind::kFinished:
      *advanced = true;
      return FinishStage(ctx, round, i, verdict.checkpoint_id, verdict.metrics_json);
    case stages::Verdict::Kind::kMoreTasks:
      round.stages[i].tasks_total += verdict.tasks.size();
      round.updated_ms = view.now;
      return SubmitTasks(std::move(verdict.tasks), [&](stores::WriteTxn& txn) {
        txn.PutRound(round);
        return Status::Ok();
      });
  }
  return Status::Ok();
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

std::optional<stores::Checkpoint> Orchestrator::CorruptInput(RunCtx& ctx, stores::Round& round, size_t i,
                                                           const Task& t) {
  const std::string prefix = tasks::kCorruptCheckpointPrefix;
  if (t.error.find(prefix) == std::string::npos) return std::nullopt;
  stages::RunView view = View(ctx, round, i);
  std::optional<stores::Checkpoint> found;
  Status s = store_->ForEachCheckpoint(ctx.run.id, [&](const stores::Checkpoint& c) {
    auto path = view.PathOf(c.id);
    if (path.ok() && t.error.find(prefix + *path + ":") != std::string::npos) {
      found = c;
      return false;
    }
    return true;
  });
  // The user's base model cannot be made again, and a checkpoint already
  // marked was not avoided: both fail the stage as any other failure.
  if (!s.ok() || !found || found->stage == "base" || !found->corrupt.empty()) return std::nullopt;
  return found;
}

Status Orchestrator::RestartAfterCorrupt(RunCtx& ctx, stores::Round& round, size_t i, const Task& t,
                                         stores::Checkpoint corrupt) {
  const Millis now = clock_->NowMs();
  const size_t at = t.error.find(tasks::kCorruptCheckpointPrefix);
  corrupt.corrupt = t.error.substr(at, 1000);
  stores::StageStatus& st = round.stages[i];
  st.state = "pending";
  st.attempt += 1;
  st.tasks_total = 0;
  st.tasks_done = 0;
  st.error.clear();
  round.updated_ms = now;
  ctx.run.updated_ms = now;
  const std::string msg = "checkpoint " + corrupt.id + " (round " + std::to_string(corrupt.round) + " " +
                          corrupt.stage + ") is corrupt: " + corrupt.corrupt + "; round " +
                          std::to_string(round.round) + " " + kStages[i] + " starts again from the last good checkpoint";
  stores::WriteTxn txn = store_->NewTxn();
  txn.PutCheckpoint(corrupt);
  txn.PutRound(round);
  txn.PutRun(ctx.run);
  txn.AppendEvent({ctx.run.id, 0, now, "checkpoint.corrupt", msg, ""});
  spdlog::error("run={} {}", ctx.run.id, msg);
  HERD_RETURN_IF_ERROR(store_->Commit(txn));
  Kick();
  return Status::Ok();
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
