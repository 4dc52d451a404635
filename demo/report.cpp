#include "demo/report.h"

#include <cstdio>
#include <algorithm>
#include <sstream>
#include <vector>

namespace herd::demo {

using nlohmann::json;

namespace {
double Get(const json& m, const char* stage, const char* key) {
  if (!m.contains(stage) || !m[stage].is_object() || !m[stage].contains(key) || !m[stage][key].is_number()) {
    return NAN;
  }
  return m[stage][key].get<double>();
}
std::string Cell(double x, const char* fmt = "%.3f") {
  if (x != x) return "-";
  char b[32];
  std::snprintf(b, sizeof b, fmt, x);
  return b;
}
}  // namespace

json BuildReport(const json& rounds) {
  json out = {{"rounds", json::array()}};
  for (const auto& r : rounds) {
    const json& m = r["metrics"];
    json row = {{"round", r["round"]},
                {"rm_heldout_accuracy", Get(m, "eval", "rm_heldout_accuracy")},
                {"best_of_k_rm_score", Get(m, "rejection_sampling", "best_of_k_rm_score")},
                {"random_rm_score", Get(m, "rejection_sampling", "random_rm_score")},
                {"accuracy_greedy", Get(m, "eval", "accuracy_greedy")},
                {"accuracy_sampled", Get(m, "eval", "accuracy_sampled")},
                {"win_rate_vs_previous", Get(m, "eval", "win_rate_vs_previous")},
                {"dpo_reward_accuracy", Get(m, "dpo", "reward_accuracy")},
                {"dpo_margin", Get(m, "dpo", "margin")}};
    row["rm_heldout_pairs"] = Get(m, "eval", "rm_heldout_pairs");
    // Greedy averaging of the RM variants: how many joined the average.
    if (m.contains("rm") && m["rm"].contains("averaged")) {
      const json& a = m["rm"]["averaged"];
      row["rm_variants"] = a.value("inputs", 0);
      row["rm_variants_averaged"] =
          a.contains("selection") ? a["selection"]["chosen"].size() : a.value("inputs", size_t{0});
      if (a.contains("selection")) row["rm_selection"] = a["selection"];
    }
    json wall = json::object();
    for (const char* s : {"collect", "rm", "rejection_sampling", "sft", "dpo", "eval"}) wall[s] = Get(m, s, "wall_s");
    row["wall_s"] = wall;
    if (out.find("base_accuracy_greedy") == out.end()) out["base_accuracy_greedy"] = Get(m, "eval", "base_accuracy_greedy");
    out["rounds"].push_back(row);
  }
  return out;
}

std::string FormatTable(const json& rep) {
  // Columns padded to their widest cell.
  const std::vector<std::string> head = {"round", "RM held-out acc (pairs)", "RM avg of", "best-of-K RM",
                                         "random RM", "acc greedy", "acc sampled", "win vs prev",
                                         "DPO reward acc", "DPO margin", "wall s (collect/rm/rs/sft/dpo/eval)"};
  std::vector<std::vector<std::string>> rows = {head};
  std::vector<std::string> base(head.size());
  base[0] = "base";
  base[5] = Cell(rep.value("base_accuracy_greedy", NAN));
  rows.push_back(base);
  for (const auto& r : rep["rounds"]) {
    auto g = [&](const char* k) { return r.contains(k) && r[k].is_number() ? r[k].get<double>() : NAN; };
    std::string wall;
    for (const char* s : {"collect", "rm", "rejection_sampling", "sft", "dpo", "eval"}) {
      wall += (wall.empty() ? "" : "/") + Cell(r["wall_s"][s].is_number() ? r["wall_s"][s].get<double>() : NAN, "%.1f");
    }
    std::string avg_of = "-";
    if (r.contains("rm_variants")) {
      avg_of = std::to_string(r["rm_variants_averaged"].get<int>()) + " of " + std::to_string(r["rm_variants"].get<int>());
    }
    rows.push_back({std::to_string(r["round"].get<int>()),
                    Cell(g("rm_heldout_accuracy")) + " (" + Cell(g("rm_heldout_pairs"), "%.0f") + ")", avg_of,
                    Cell(g("best_of_k_rm_score")), Cell(g("random_rm_score")), Cell(g("accuracy_greedy")),
                    Cell(g("accuracy_sampled")), Cell(g("win_rate_vs_previous")), Cell(g("dpo_reward_accuracy")),
                    Cell(g("dpo_margin")), wall});
  }
  std::vector<size_t> width(head.size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::ostringstream o;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c] + std::string(c + 1 < row.size() ? width[c] - row[c].size() : 0, ' ') +
              (c + 1 < row.size() ? " | " : "");
    }
    line.erase(line.find_last_not_of(' ') + 1);
    o << line << "\n";
  }
  return o.str();
}

std::string RenderHtml(const json& rep) {
  // One SVG line chart per metric across rounds; values in [0, 1] unless noted.
  struct Series {
    const char* key;
    const char* label;
  };
  const Series series[] = {{"accuracy_greedy", "policy accuracy (greedy)"},
                           {"accuracy_sampled", "policy accuracy (sampled)"},
                           {"rm_heldout_accuracy", "RM held-out accuracy"},
                           {"win_rate_vs_previous", "win rate vs previous round"},
                           {"dpo_reward_accuracy", "DPO reward accuracy"},
                           {"best_of_k_rm_score", "best-of-K RM score"},
                           {"random_rm_score", "random-sample RM score"}};
  std::ostringstream h;
  h << "<!doctype html><meta charset=utf-8><title>herd demo report</title>"
    << "<style>body{font-family:sans-serif;margin:2em}svg{border:1px solid #ccc;margin:4px}"
    << "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
    << "<h1>herd demo: six rounds of the Llama 3 loop</h1><p>Base greedy accuracy: "
    << Cell(rep.value("base_accuracy_greedy", NAN)) << "</p>";
  const auto& rows = rep["rounds"];
  for (const auto& s : series) {
    double lo = 0, hi = 1;
    for (const auto& r : rows) {
      if (!r[s.key].is_number()) continue;
      lo = std::min(lo, r[s.key].get<double>());
      hi = std::max(hi, r[s.key].get<double>());
    }
    const int W = 320, H = 180, P = 30;
    h << "<svg width=" << W << " height=" << H << "><text x=8 y=16 font-size=12>" << s.label << "</text>";
    h << "<line x1=" << P << " y1=" << H - P << " x2=" << W - 10 << " y2=" << H - P << " stroke=#999 />";
    std::ostringstream pts;
    size_t n = rows.size();
    for (size_t i = 0; i < n; ++i) {
      if (!rows[i][s.key].is_number()) continue;
      double x = P + (n > 1 ? double(i) / double(n - 1) : 0.5) * (W - P - 20);
      double y = (H - P) - (rows[i][s.key].get<double>() - lo) / (hi - lo) * (H - 2 * P);
      pts << x << "," << y << " ";
      h << "<circle cx=" << x << " cy=" << y << " r=3 fill=#36c /><text x=" << x - 4 << " y=" << H - 12
        << " font-size=10>" << rows[i]["round"] << "</text>";
    }
    h << "<polyline fill=none stroke=#36c points='" << pts.str() << "' />";
    h << "<text x=2 y=" << H - P << " font-size=10>" << Cell(lo, "%.2g") << "</text><text x=2 y=" << P
      << " font-size=10>" << Cell(hi, "%.2g") << "</text></svg>";
  }
  h << "<h2>Rounds</h2><pre>" << FormatTable(rep) << "</pre>";
  return h.str();
}

}  // namespace herd::demo
