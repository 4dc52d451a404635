#pragma once
// The record JSON: how the daemon's records look on the wire (docs/api.md),
// in listings, single-record answers and the NDJSON exports alike. Only
// route files include this (it pulls in nlohmann/json). Stored free-form
// JSON text (run config, metrics, progress) is embedded as JSON, not as a
// string. Invalid UTF-8 in stored text is the dumper's business
// (DumpJson and ExportLine replace it).
#include <nlohmann/json.hpp>

#include <string>

#include "daemon/orchestrator.h"
#include "daemon/reader.h"
#include "daemon/records.h"
#include "daemon/task.h"

namespace herd::api {

nlohmann::json RunJson(const daemon::Run& r);
nlohmann::json RoundJson(const daemon::Round& r);
nlohmann::json CheckpointJson(const daemon::Checkpoint& c);
nlohmann::json EventJson(const daemon::Event& e);
nlohmann::json RequestJson(const daemon::AnnotationRequest& q);
nlohmann::json TaskJson(const daemon::Task& t, bool with_spec);
nlohmann::json WorkerJson(const daemon::WorkerInfo& w);
nlohmann::json MessagesJson(const std::vector<daemon::Message>& ms);
// The data of a run: fields under their record names, tokens as an int
// array, messages as [{"role", "content"}]; rm_score null when unscored,
// edited only when present.
nlohmann::json SampleJson(const daemon::Sample& s);
nlohmann::json PairJson(const daemon::Pair& p);
nlohmann::json PromptJson(const daemon::Prompt& p);
nlohmann::json AnnotationJson(const daemon::Annotation& a);
// One line of a round's SFT set, ready to train on:
// {"prompt_id", "round", "idx", "messages": [...prompt, {"role": "assistant", ...}],
//  "policy_checkpoint_id", "rm_score"}.
nlohmann::json SftExampleJson(const daemon::SftExample& e);
// j as one NDJSON line (compact, '\n'-terminated) appended to *out;
// invalid UTF-8 is replaced by U+FFFD, never thrown.
void AppendJsonLine(const nlohmann::json& j, std::string* out);
// The run with its live progress: the current round's stages, and the
// running tasks' latest heartbeat (step, loss, tokens/s).
nlohmann::json ProgressJson(const daemon::RunProgress& p, const std::vector<daemon::Task>& tasks);

}  // namespace herd::api
