#include "api/routes/record_json.h"

namespace herd::api {

using nlohmann::json;

namespace {
json ParseOr(const std::string& text, json fallback) {
  if (text.empty()) return fallback;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}
}  // namespace

json MessagesJson(const std::vector<daemon::Message>& ms) {
  json a = json::array();
  for (const auto& m : ms) a.push_back({{"role", m.role}, {"content", m.content}});
  return a;
}

json SampleJson(const daemon::Sample& s) {
  json j = {{"run_id", s.run_id},
            {"round", s.round},
            {"prompt_id", s.prompt_id},
            {"idx", s.idx},
            {"tokens", s.tokens},
            {"text", s.text},
            {"logprob", s.logprob},
            {"policy_checkpoint_id", s.policy_checkpoint_id},
            {"rm_checkpoint_id", s.rm_checkpoint_id},
            {"temperature", s.temperature},
            {"seed", s.seed},
            {"selected", s.selected},
            {"task_id", s.task_id},
            {"created_ms", s.created_ms}};
  j["rm_score"] = s.rm_score ? json(*s.rm_score) : json(nullptr);
  return j;
}

json PairJson(const daemon::Pair& p) {
  json j = {{"run_id", p.run_id},
            {"round", p.round},
            {"id", p.id},
            {"prompt", MessagesJson(p.prompt)},
            {"chosen", p.chosen},
            {"rejected", p.rejected},
            {"strength", p.strength},
            {"source", p.source},
            {"annotation_id", p.annotation_id},
            {"annotator", p.annotator},
            {"created_ms", p.created_ms}};
  if (p.edited) j["edited"] = *p.edited;
  return j;
}

json PromptJson(const daemon::Prompt& p) {
  return {{"run_id", p.run_id}, {"id", p.id},         {"messages", MessagesJson(p.messages)},
          {"split", p.split},   {"source", p.source}, {"created_ms", p.created_ms}};
}

json AnnotationJson(const daemon::Annotation& a) {
  json j = {{"run_id", a.run_id},
            {"id", a.id},
            {"raw", a.raw},
            {"format", a.format},
            {"prompt", MessagesJson(a.prompt)},
            {"responses", a.responses},
            {"strength", a.strength},
            {"annotator", a.annotator},
            {"request_id", a.request_id},
            {"round", a.round},
            {"source_file", a.source_file},
            {"source_line", a.source_line},
            {"received_ms", a.received_ms}};
  if (a.edited) j["edited"] = *a.edited;
  return j;
}

json SftExampleJson(const daemon::SftExample& e) {
  json msgs = MessagesJson(e.prompt.messages);
  msgs.push_back({{"role", "assistant"}, {"content", e.sample.text}});
  json j = {{"prompt_id", e.sample.prompt_id},
            {"round", e.sample.round},
            {"idx", e.sample.idx},
            {"messages", std::move(msgs)},
            {"policy_checkpoint_id", e.sample.policy_checkpoint_id}};
  j["rm_score"] = e.sample.rm_score ? json(*e.sample.rm_score) : json(nullptr);
  return j;
}

void AppendJsonLine(const json& j, std::string* out) {
  out->append(j.dump(-1, ' ', false, json::error_handler_t::replace));
  out->push_back('\n');
}

json RunJson(const daemon::Run& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"state", r.state},
          {"current_round", r.current_round},
          {"current_stage", r.current_stage},
          {"error", r.error},
          {"config", ParseOr(r.config_json, json::object())},
          {"created_ms", r.created_ms},
          {"updated_ms", r.updated_ms}};
}

json RoundJson(const daemon::Round& r) {
  json stages = json::array();
  for (const auto& s : r.stages) {
    stages.push_back({{"stage", s.stage},
                      {"state", s.state},
                      {"attempt", s.attempt},
                      {"tasks_total", s.tasks_total},
                      {"tasks_done", s.tasks_done},
                      {"checkpoint_id", s.checkpoint_id},
                      {"metrics", ParseOr(s.metrics_json, json::object())},
                      {"error", s.error},
                      {"started_ms", s.started_ms},
                      {"finished_ms", s.finished_ms}});
  }
  return {{"run_id", r.run_id},
          {"round", r.round},
          {"state", r.state},
          {"stages", stages},
          {"metrics", ParseOr(r.metrics_json, json::object())},
          {"created_ms", r.created_ms},
          {"updated_ms", r.updated_ms}};
}

json CheckpointJson(const daemon::Checkpoint& c) {
  return {{"id", c.id},
          {"run_id", c.run_id},
          {"path", c.path},
          {"sha256", c.sha256},
          {"config_hash", c.config_hash},
          {"stage", c.stage},
          {"round", c.round},
          {"variant", c.variant},
          {"parents", c.parents},
          {"datasets", c.datasets},
          {"hyperparameters", ParseOr(c.hyperparameters_json, json::object())},
          {"averaging_weights", c.averaging_weights},
          {"metrics", ParseOr(c.metrics_json, json::object())},
          {"size_bytes", c.size_bytes},
          {"created_ms", c.created_ms},
          {"corrupt", c.corrupt}};
}

json EventJson(const daemon::Event& e) {
  return {{"seq", e.seq},
          {"time_ms", e.time_ms},
          {"kind", e.kind},
          {"message", e.message},
          {"detail", ParseOr(e.detail_json, json::object())}};
}

json RequestJson(const daemon::AnnotationRequest& q) {
  return {{"id", q.id},
          {"round", q.round},
          {"prompt_id", q.prompt_id},
          {"prompt", MessagesJson(q.prompt)},
          {"response_a", q.response_a},
          {"response_b", q.response_b},
          {"model_a", q.checkpoint_a},
          {"model_b", q.checkpoint_b},
          {"state", q.state},
          {"annotation_id", q.annotation_id},
          {"created_ms", q.created_ms},
          {"answered_ms", q.answered_ms}};
}

json TaskJson(const daemon::Task& t, bool with_spec) {
  json j = {{"id", t.id},
            {"run_id", t.run},
            {"round", t.round},
            {"stage", t.stage},
            {"kind", t.kind},
            {"priority", t.priority},
            {"state", daemon::TaskStateName(t.state)},
            {"attempt", t.attempt},
            {"max_attempts", t.max_attempts},
            {"worker_id", t.worker_id},
            {"progress", ParseOr(t.progress, json::object())},
            {"error", t.error},
            {"cancel_requested", t.cancel_requested},
            {"requirements", {{"device", t.needs.device}, {"min_memory_bytes", t.needs.min_memory_bytes}}},
            {"created_ms", t.created_ms},
            {"updated_ms", t.updated_ms}};
  if (with_spec) j["spec"] = ParseOr(t.spec, json::object());
  return j;
}

json WorkerJson(const daemon::WorkerInfo& w) {
  return {{"id", w.id},
          {"name", w.name},
          {"device", w.device},
          {"memory_bytes", w.memory_bytes},
          {"version", w.version},
          {"registered_ms", w.registered_ms},
          {"last_seen_ms", w.last_seen_ms}};
}

json ProgressJson(const daemon::RunProgress& p, const std::vector<daemon::Task>& tasks) {
  json j = RunJson(p.run);
  j["disk_bytes"] = p.disk_bytes;
  if (p.round) j["round"] = RoundJson(*p.round);
  json running = json::array();
  for (const auto& t : tasks) {
    if (t.state != daemon::TaskState::kLeased) continue;
    running.push_back({{"id", t.id}, {"kind", t.kind}, {"stage", t.stage},
                       {"worker_id", t.worker_id}, {"progress", ParseOr(t.progress, json::object())}});
  }
  j["running_tasks"] = running;
  return j;
}

}  // namespace herd::api
