#pragma once
// JSONL export and import of store collections (docs/store.md "Export").
// Both stream: export walks the store with a bounded iterator and writes one
// line per record; import reads a line, parses it, and commits in batches.
// Neither ever holds the whole collection.
//
// Line formats are the record fields under their C++ names (tokens as an int
// array, messages as [{"role","content"}]); the SFT export is
// {"prompt_id","round","idx","messages":[...prompt, {"role":"assistant",...}],
//  "rm_score","policy_checkpoint_id"} so it can be fed to SFT directly.
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "common/status.h"
#include "stores/records.h"

namespace herd::stores {

class Store;

struct ExportStats {
  uint64_t lines = 0;
  uint64_t bytes = 0;
};

Result<ExportStats> ExportSamplesJsonl(Store& store, const std::string& run_id, std::optional<uint32_t> round,
                                       std::ostream& out);
Result<ExportStats> ExportPairsJsonl(Store& store, const std::string& run_id, std::optional<uint32_t> round,
                                     std::ostream& out);
// The SFT set of a round: the samples recorded as members of dataset "sft"
// (Store::ForEachSftSample), each joined with its prompt.
Result<ExportStats> ExportSftSetJsonl(Store& store, const std::string& run_id, uint32_t round, std::ostream& out);
Result<ExportStats> ExportPromptsJsonl(Store& store, const std::string& run_id, std::ostream& out);
Result<ExportStats> ExportAnnotationsJsonl(Store& store, const std::string& run_id, std::ostream& out);

struct ImportOptions {
  // Records per committed batch. Default: 1000.
  uint32_t batch_records = 1000;
  // Longest accepted line, bytes. Default: 16 MiB.
  size_t max_line_bytes = 16u << 20;
  // Overrides run_id of every imported record when non-empty (import into
  // another run). Default: "" (keep the run_id in the line).
  std::string run_id;
};

struct ImportStats {
  uint64_t records = 0;  // committed
};

// Each reads `in` to EOF. The first bad line stops the import with
// InvalidArgument "line N: field 'x' ..."; batches committed before it stay
// (each batch is atomic and synced), and stats->records says how many.
Status ImportSamplesJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats);
Status ImportPairsJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats);
Status ImportPromptsJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats);
Status ImportAnnotationsJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats);

// One record as a JSON object text (no newline), the same shape as the
// export lines; for the API's listings.
std::string ToJson(const Sample& s);
std::string ToJson(const Pair& p);
std::string ToJson(const Prompt& p);
std::string ToJson(const Annotation& a);

}  // namespace herd::stores
