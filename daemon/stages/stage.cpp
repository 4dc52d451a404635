#include "daemon/stages/stage.h"

#include <algorithm>
#include <filesystem>

#include "common/atomic_file.h"
#include "stores/artifacts.h"
#include "stores/store.h"

namespace herd::daemon::stages {

namespace fs = std::filesystem;

std::string RunView::Salt() const { return run.id + "/r" + std::to_string(r()); }

Result<std::optional<std::string>> RunView::NewestGood(uint32_t rr,
                                                      std::initializer_list<StageIndex> stages) const {
  for (; rr > 0; --rr) {
    HERD_ASSIGN_OR_RETURN(stores::Round prev, store->GetRound(run.id, rr));
    for (StageIndex i : stages) {
      const std::string& id = prev.stages[i].checkpoint_id;
      if (!id.empty() && !Corrupt(id)) return std::optional<std::string>(id);
    }
  }
  return std::optional<std::string>();
}

Result<std::string> RunView::PolicyOf(uint32_t rr) const {
  HERD_ASSIGN_OR_RETURN(auto policy, NewestGood(rr, {kDpo, kSft}));
  return policy.value_or(base_checkpoint_id);
}

bool RunView::Corrupt(const std::string& checkpoint_id) const {
  auto c = store->GetCheckpoint(checkpoint_id);
  return c.ok() && !c->corrupt.empty();
}

Result<std::string> RunView::LastGood(StageIndex i) const {
  const std::string& chosen = ChosenBy(i);
  if (!chosen.empty() && !Corrupt(chosen)) return chosen;
  switch (i) {
    case kSft: return PolicyOf(r() - 1);
    case kDpo: return LastGood(kSft);
    case kRm: {
      HERD_ASSIGN_OR_RETURN(auto rm, NewestGood(r() - 1, {kRm}));
      if (rm) return *rm;
      return Status::NotFound("round " + std::to_string(r()) + "'s reward model " + chosen +
                              " is corrupt and no earlier round has a good one");
    }
    default: return chosen;
  }
}

Result<std::string> RunView::PathOf(const std::string& checkpoint_id) const {
  HERD_ASSIGN_OR_RETURN(stores::Checkpoint c, store->GetCheckpoint(checkpoint_id));
  if (c.stage == "base") return c.path;  // the user's model, outside the artifact root
  return artifacts->Resolve(c.path);
}

Result<std::pair<std::string, std::string>> RunView::NewCheckpoint() const {
  HERD_ASSIGN_OR_RETURN(std::string id, store->NewId("ckpt"));
  HERD_ASSIGN_OR_RETURN(std::string dir, artifacts->MakeCheckpointDir(run.id, id));
  return std::make_pair(id, dir);
}

Result<std::string> RunView::DatasetPath(const std::string& name) const {
  return artifacts->MakeDatasetPath(run.id, name);
}

Task RunView::NewTask(const char* stage, const char* kind, std::string spec) const {
  Task t;
  t.run = run.id;
  t.round = r();
  t.stage = stage;
  t.kind = kind;
  t.spec = std::move(spec);
  t.priority = priority;
  t.max_attempts = static_cast<int32_t>(cfg.max_attempts);
  t.needs = cfg.workers;
  return t;
}

Plan Plan::Finished(std::string checkpoint_id, std::string metrics_json) {
  Plan p;
  p.kind = Kind::kFinished;
  p.checkpoint_id = std::move(checkpoint_id);
  p.metrics_json = std::move(metrics_json);
  return p;
}

Plan Plan::Failed(std::string why) {
  Plan p;
  p.kind = Kind::kFailed;
  p.error = std::move(why);
  return p;
}

Verdict Verdict::Finished(std::string checkpoint_id, std::string metrics_json) {
  Verdict v;
  v.kind = Kind::kFinished;
  v.checkpoint_id = std::move(checkpoint_id);
  v.metrics_json = std::move(metrics_json);
  return v;
}

Verdict Verdict::More(std::vector<Task> tasks) {
  Verdict v;
  v.kind = Kind::kMoreTasks;
  v.tasks = std::move(tasks);
  return v;
}

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

Result<std::vector<stores::Prompt>> SelectPrompts(stores::Store* store, const std::string& run,
                                                  const std::string& split, int64_t n,
                                                  const std::string& salt, bool repeat) {
  std::vector<stores::Prompt> split_prompts;
  HERD_RETURN_IF_ERROR(store->ForEachPrompt(run, [&](const stores::Prompt& p) {
    if (p.split == split) split_prompts.push_back(p);
    return true;
  }));
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

std::vector<tasks::Message> TaskMessages(const std::vector<stores::Message>& ms) {
  std::vector<tasks::Message> out;
  out.reserve(ms.size());
  for (const auto& m : ms) out.push_back({m.role, m.content});
  return out;
}

std::vector<tasks::Prompt> TaskPrompts(const std::vector<stores::Prompt>& ps, size_t begin, size_t end) {
  std::vector<tasks::Prompt> out;
  for (size_t i = begin; i < end && i < ps.size(); ++i) out.push_back({ps[i].id, TaskMessages(ps[i].messages)});
  return out;
}

tasks::PairRow PairRowOf(const stores::Pair& p) {
  tasks::PairRow row;
  row.id = p.id;
  row.prompt = TaskMessages(p.prompt);
  row.chosen = p.chosen;
  row.rejected = p.rejected;
  row.strength = p.strength;
  row.edited = p.edited;
  return row;
}

Status WriteDataset(const std::string& path, const std::vector<std::string>& lines) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::IoError("creating the directory of " + path + ": " + ec.message());
  size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size() + 1;
  std::string text;
  text.reserve(bytes);
  for (const auto& l : lines) {
    text += l;
    text += '\n';
  }
  return WriteFileAtomic(path, text);
}

std::string CounterKey(const char* what, const std::string& run, uint32_t round) {
  return std::string(what) + "/" + run + "/" + std::to_string(round);
}

Status BadResult(const Task& t, const std::string& what) {
  return Status::InvalidArgument("result of " + t.kind + " task " + t.id + ": " + what);
}

}  // namespace herd::daemon::stages
