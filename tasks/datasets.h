#pragma once
// The rows of the JSONL datasets herdd writes for training tasks, one JSON
// object per line: preference pairs (train_rm, train_dpo, the held-out and
// selection sets) and conversations (train_sft).
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"

namespace herd::tasks {

struct PairRow {
  std::string id;                   // required
  std::vector<Message> prompt;      // required
  std::string chosen;               // required
  std::string rejected;             // required
  std::string strength = "better";  // one of AllStrengths(). Default: better
  std::optional<std::string> edited;  // the annotator's corrected response. Default: none
  bool operator==(const PairRow&) const = default;
};

struct ConversationRow {
  std::string id;                   // required
  std::vector<Message> messages;    // required: ends with the assistant's response
  bool operator==(const ConversationRow&) const = default;
};

std::string Encode(const PairRow& p);
std::string Encode(const ConversationRow& c);
// `where` prefixes errors: "pairs.jsonl:12".
Result<PairRow> DecodePairRow(const std::string& line, const std::string& where);
Result<ConversationRow> DecodeConversationRow(const std::string& line, const std::string& where);

// Reads a whole JSONL file of rows, skipping blank lines; errors name the
// file and line.
Result<std::vector<PairRow>> ReadPairRows(const std::string& path);
Result<std::vector<ConversationRow>> ReadConversationRows(const std::string& path);

}  // namespace herd::tasks
