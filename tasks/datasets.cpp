#include "tasks/datasets.h"

#include <fstream>
#include <set>

namespace herd::tasks {

using nlohmann::json;

std::string Encode(const PairRow& p) {
  json j = {{"id", p.id},
            {"prompt", ToJson(p.prompt)},
            {"chosen", p.chosen},
            {"rejected", p.rejected},
            {"strength", p.strength}};
  if (p.edited) j["edited"] = *p.edited;
  return j.dump();
}

std::string Encode(const ConversationRow& c) {
  return json{{"id", c.id}, {"messages", ToJson(c.messages)}}.dump();
}

Result<PairRow> DecodePairRow(const std::string& line, const std::string& where) {
  return DecodeWith<PairRow>(line, where, [](FieldReader& r, PairRow* p) {
    static const std::set<std::string> kStrengths(AllStrengths().begin(), AllStrengths().end());
    r.Str("id", &p->id, /*required=*/true);
    ReadMessages(r, "prompt", &p->prompt, /*required=*/true);
    r.Str("chosen", &p->chosen, /*required=*/true);
    r.Str("rejected", &p->rejected, /*required=*/true);
    r.Str("strength", &p->strength);
    if (r.ok() && !kStrengths.count(p->strength)) {
      r.Fail(r.Path("strength"), "unknown strength '" + p->strength + "'");
    }
    std::string edited;
    if (r.Find("edited")) {
      r.Str("edited", &edited);
      p->edited = edited;
    }
  });
}

Result<ConversationRow> DecodeConversationRow(const std::string& line, const std::string& where) {
  return DecodeWith<ConversationRow>(line, where, [](FieldReader& r, ConversationRow* c) {
    r.Str("id", &c->id, /*required=*/true);
    ReadMessages(r, "messages", &c->messages, /*required=*/true);
  });
}

namespace {

template <typename Row, typename Decode>
Result<std::vector<Row>> ReadRows(const std::string& path, Decode decode) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("dataset " + path + ": cannot open");
  std::vector<Row> rows;
  std::string line;
  int64_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.empty()) continue;
    auto row = decode(line, path + ":" + std::to_string(n));
    if (!row.ok()) return row.status();
    rows.push_back(std::move(row).value());
  }
  return rows;
}

}  // namespace

Result<std::vector<PairRow>> ReadPairRows(const std::string& path) {
  return ReadRows<PairRow>(path, DecodePairRow);
}

Result<std::vector<ConversationRow>> ReadConversationRows(const std::string& path) {
  return ReadRows<ConversationRow>(path, DecodeConversationRow);
}

}  // namespace herd::tasks
