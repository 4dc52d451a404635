#pragma once
// Wire JSON for the daemon's and the store's records (docs/api.md). Only
// route files include this (it pulls in nlohmann/json).
#include <nlohmann/json.hpp>

#include "daemon/orchestrator.h"
#include "daemon/task.h"
#include "stores/records.h"

namespace herd::api {

nlohmann::json RunJson(const stores::Run& r);
nlohmann::json RoundJson(const stores::Round& r);
nlohmann::json CheckpointJson(const stores::Checkpoint& c);
nlohmann::json EventJson(const stores::Event& e);
nlohmann::json RequestJson(const stores::AnnotationRequest& q);
nlohmann::json TaskJson(const daemon::Task& t, bool with_spec);
nlohmann::json WorkerJson(const daemon::WorkerInfo& w);
nlohmann::json MessagesJson(const std::vector<stores::Message>& ms);
// The run with its live progress: the current round's stages, and the
// running tasks' latest heartbeat (step, loss, tokens/s).
nlohmann::json ProgressJson(const daemon::RunProgress& p, const std::vector<daemon::Task>& tasks);

}  // namespace herd::api
