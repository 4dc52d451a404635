#pragma once
// Annotation JSONL: one preference record per line, in any of four formats
// (docs/api.md, "Annotation formats"), normalised to one Annotation.
//   pairwise        {"id"?, "prompt", "chosen", "rejected", "strength"?, "edited"?, "annotator"?}
//   ranked          {"id"?, "prompt", "responses": [≥2], "ranking": [perm, best first], "strength"?,
//                    "annotator"?}
//   HH-RLHF         {"chosen": "\n\nHuman: …\n\nAssistant: …", "rejected": "…"}
//   UltraFeedback   {"prompt", "chosen": [messages], "rejected": [messages],
//                    "score_chosen"?, "score_rejected"?}
// The parser is incremental (AnnotationReader::Feed takes chunks of any
// size), so an upload of hundreds of MB is never held whole.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/ingest/line_splitter.h"
#include "common/status.h"

namespace herd::ingest {

// How much better the chosen response is (Llama 3 §4.2.1), strongest first.
enum class Strength { kSignificantlyBetter = 0, kBetter, kSlightlyBetter, kMarginallyBetter };
const char* StrengthName(Strength s);  // "significantly_better", ...
std::optional<Strength> ParseStrength(std::string_view s);

enum class AnnotationFormat { kPairwise, kRanked, kHhRlhf, kUltraFeedback };
const char* FormatName(AnnotationFormat f);  // "pairwise", "ranked", "hh_rlhf", "ultrafeedback"

struct Message {
  std::string role;  // "system" | "user" | "assistant" | "ipython" (uploaded "tool" is stored as ipython)
  std::string content;
  bool operator==(const Message&) const = default;
};

struct Annotation {
  // The client's "id", or "sha256:<hex>" of the normalised prompt and
  // responses when absent, so re-uploading the same file dedupes either way.
  std::string id;
  bool id_from_client = false;
  AnnotationFormat format = AnnotationFormat::kPairwise;
  std::vector<Message> prompt;         // the conversation before the responses
  std::vector<std::string> responses;  // best first: [edited,] chosen, rejected / ranked order
  Strength strength = Strength::kBetter;
  bool strength_defaulted = false;  // the line had no "strength"
  bool edited = false;              // responses[0] is the annotator's edit of responses[1]
  std::optional<std::string> annotator;
  std::optional<double> score_chosen, score_rejected;  // UltraFeedback only
  uint64_t line = 0;  // 1-based line in the upload
  std::string raw;    // the line as received (without '\n')
};

struct LineError {
  uint64_t line = 0;
  std::string detail;  // names the field: "field 'strength': ..."
};

struct IngestOptions {
  // Lines longer than this are rejected unread. Default: 1 MiB.
  size_t max_line_bytes = 1u << 20;
  // The strength of a line without "strength" (the run's configured
  // default). Default: kBetter.
  Strength default_strength = Strength::kBetter;
};

// Parses one line (without '\n'). The error's message names the field.
Result<Annotation> ParseAnnotationLine(std::string_view line, uint64_t line_no,
                                       const IngestOptions& opts);

// Streams a JSONL upload: Feed chunks, then Finish. Blank lines are skipped
// (they are not records and not errors).
class AnnotationReader {
 public:
  using RecordFn = std::function<void(Annotation&&)>;
  using ErrorFn = std::function<void(LineError&&)>;
  AnnotationReader(IngestOptions opts, RecordFn on_record, ErrorFn on_error);
  void Feed(std::string_view chunk);
  void Finish();
  uint64_t accepted() const { return accepted_; }
  uint64_t rejected() const { return rejected_; }

 private:
  void OnLine(const Line& l);
  IngestOptions opts_;
  LineSplitter splitter_;
  RecordFn on_record_;
  ErrorFn on_error_;
  uint64_t accepted_ = 0, rejected_ = 0;
};

// Prompts JSONL for POST /v1/runs/{run}/prompts:
//   {"id"?, "prompt": string | messages, "split"?: "train" | "eval"}
enum class Split { kTrain, kEval };
struct PromptRecord {
  std::string id;  // client id, or "sha256:<hex>" of the messages
  bool id_from_client = false;
  std::vector<Message> messages;
  Split split = Split::kTrain;  // Default when absent: train
  uint64_t line = 0;
};
Result<PromptRecord> ParsePromptLine(std::string_view line, uint64_t line_no);

class PromptReader {
 public:
  using RecordFn = std::function<void(PromptRecord&&)>;
  using ErrorFn = std::function<void(LineError&&)>;
  // Default line limit: 1 MiB.
  PromptReader(RecordFn on_record, ErrorFn on_error, size_t max_line_bytes = 1u << 20);
  void Feed(std::string_view chunk);
  void Finish();

 private:
  void OnLine(const Line& l);
  LineSplitter splitter_;
  size_t max_;
  RecordFn on_record_;
  ErrorFn on_error_;
};

// Splits an HH-RLHF transcript ("\n\nHuman: a\n\nAssistant: b") into turns.
// InvalidArgument (naming `field`) when it does not start with a Human turn.
Result<std::vector<Message>> ParseHhTranscript(std::string_view text, const std::string& field);

}  // namespace herd::ingest
