#include "demo/annotator.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <regex>

#include "api/client/json_client.h"
#include "workers/runtime/checkers.h"

namespace herd::demo {

using nlohmann::json;

int SimulatedAnnotator::AnswerPending(api::HttpClient& c, const std::string& run) {
  const worker::Checker* checker = worker::FindChecker(o_.checker);
  if (checker == nullptr) return 0;
  auto page = api::GetJson(c, "/v1/runs/" + run + "/annotation-requests?state=pending&page_size=1000");
  if (!page.ok()) return 0;
  std::uniform_real_distribution<double> u(0, 1);
  int n = 0;
  for (const auto& q : (*page)["annotation_requests"]) {
    std::string prompt = q["prompt"].back()["content"];
    std::string a = q["response_a"], b = q["response_b"];
    auto want = checker->Answer(prompt);
    double sa = checker->Score(prompt, a), sb = checker->Score(prompt, b);
    // How far each answer is from the truth decides the strength (§4.2.1's
    // four levels); a tie is a coin flip, "marginally better".
    auto dist = [&](const std::string& r) {
      auto x = checker->Stated(r);
      return x && want ? std::fabs(double(*x) - std::stod(*want)) : 100.0;
    };
    double da = sa >= 1 ? 0 : dist(a), db = sb >= 1 ? 0 : dist(b);
    bool pick_a = da < db || (da == db && u(rng_) < 0.5);
    double gap = std::fabs(da - db);
    std::string strength = (sa >= 1) != (sb >= 1) ? "significantly_better"
                           : gap >= 3              ? "better"
                           : gap >= 1              ? "slightly_better"
                                                   : "marginally_better";
    // Humans disagree with themselves, more on close calls.
    const double flip = o_.disagree_rate * (strength == "significantly_better" ? 0.25
                                            : strength == "better"             ? 0.5
                                                                               : 1.0);
    const bool flipped = u(rng_) < flip;
    if (flipped) pick_a = !pick_a;
    json body = {{"choice", pick_a ? "a" : "b"}, {"strength", strength}, {"annotator", o_.name}};
    double chosen_score = pick_a ? sa : sb;
    if (want && chosen_score < 1 && u(rng_) < o_.edit_rate) body["edited"] = *want;
    std::string id = q["id"];
    auto r = c.Request("POST", "/v1/runs/" + run + "/annotation-requests/" + id + ":answer", body.dump());
    if (r.ok() && r->status == 200) {
      ++n;
      ++answered_;
      auto& [answered, flips] = by_strength_[strength];
      ++answered;
      flips += flipped;
    }
  }
  return n;
}

}  // namespace herd::demo
