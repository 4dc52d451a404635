#pragma once
// The demo's round table, report.json and report.html (inline SVG charts,
// viewable offline).
#include <nlohmann/json.hpp>

#include <string>

namespace herd::demo {

// rounds: the "rounds" array of GET /v1/runs/{run}/rounds. Returns
// {"rounds": [{round, rm_heldout_accuracy, best_of_k_rm_score, random_rm_score,
// accuracy_greedy, accuracy_sampled, win_rate_vs_previous, dpo_reward_accuracy,
// dpo_margin, wall_s: {stage: s}}], "base_accuracy_greedy"}.
nlohmann::json BuildReport(const nlohmann::json& rounds);
std::string FormatTable(const nlohmann::json& report);
std::string RenderHtml(const nlohmann::json& report);

}  // namespace herd::demo
