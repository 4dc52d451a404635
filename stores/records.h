#pragma once
// Plain record structs kept in the store, one per column family
// (docs/store.md). No RocksDB or JSON types here: the daemon and the API use
// these directly. Free-form parts (run config, task spec/result, metrics,
// hyperparameters) are JSON text strings that the store keeps verbatim.
//
// Times are milliseconds since the Unix epoch (int64). Ids issued by the
// store match [a-z0-9-]+ (see Store::NewId); client-chosen ids (prompt,
// annotation and pair ids from uploads) are arbitrary UTF-8 strings and are
// never used to build filesystem paths.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace herd::stores {

// One chat message, as in the Llama 3 dialog format: role is one of system,
// user, assistant, ipython (not checked by the store).
struct Message {
  std::string role;
  std::string content;
  bool operator==(const Message&) const = default;
};

// Inside a GoogleTest TEST body write stores::Run: plain `Run` names
// testing::Test::Run there.
// family `runs`, key (run). State vocabulary is the daemon's
// ("created", "running", "paused", "succeeded", "failed", "cancelled", ...).
struct Run {
  std::string id;
  std::string name;
  std::string config_json;    // the validated run config, verbatim
  std::string state;
  uint32_t current_round = 0;
  std::string current_stage;  // e.g. "rm", "rejection_sampling", "sft", "dpo", "eval"
  std::string error;          // last failure, empty when none
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  bool operator==(const Run&) const = default;
};

// State of one stage inside a round.
struct StageStatus {
  std::string stage;            // "collect", "rm", "rejection_sampling", "sft", "dpo", "eval"
  std::string state;            // daemon vocabulary: "pending", "running", "succeeded", ...
  uint32_t attempt = 0;
  uint64_t tasks_total = 0;
  uint64_t tasks_done = 0;
  std::string checkpoint_id;    // the stage's chosen (averaged) checkpoint, if any
  std::string metrics_json;     // losses, accuracies, wall time; "" when none
  std::string error;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  bool operator==(const StageStatus&) const = default;
};

// family `rounds`, key (run, round).
struct Round {
  std::string run_id;
  uint32_t round = 0;               // 1-based in the daemon; the store accepts any value
  std::string state;
  std::vector<StageStatus> stages;  // in execution order
  std::string metrics_json;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  bool operator==(const Round&) const = default;
};

// Task lifecycle. The numeric values are persisted (task_queue keys and the
// task value): append only, never renumber.
enum class TaskState : uint8_t {
  kQueued = 0,     // waiting for a lease (respecting not_before_ms)
  kLeased = 1,     // held by a worker under lease_id
  kSucceeded = 2,
  kFailed = 3,     // attempts exhausted or permanent failure
  kCancelled = 4,
};
const char* TaskStateName(TaskState s);
// "queued" → kQueued; false on an unknown name.
bool ParseTaskState(const std::string& name, TaskState* out);

// family `tasks`, key (task); index `task_queue`, key (state, priority desc,
// queue_seq) → task id. The index entry is maintained by WriteTxn::PutTask.
struct Task {
  std::string id;
  std::string run_id;            // "" for tasks outside a run
  uint32_t round = 0;
  std::string stage;
  std::string kind;              // train_rm, rejection_sample, train_sft, train_dpo, average, eval
  std::string spec_json;
  std::string requirements_json; // device kind, memory, gang size
  int32_t priority = 0;          // higher is leased first
  uint64_t queue_seq = 0;        // FIFO order among equal priorities; set once at creation
  TaskState state = TaskState::kQueued;
  uint32_t attempt = 0;          // attempts started so far
  uint32_t max_attempts = 3;
  int64_t not_before_ms = 0;     // retry backoff: not leased before this time
  std::string lease_id;          // current/last lease (the fence for results)
  std::string worker_id;
  int64_t lease_expires_ms = 0;
  std::string progress_json;     // last heartbeat's progress
  std::string result_json;
  std::string error;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  bool operator==(const Task&) const = default;
};

// family `workers`, key (worker).
struct Worker {
  std::string id;
  std::string name;               // host name or pod name as reported
  std::string device;             // "cpu", "cuda:0", ...
  uint64_t memory_bytes = 0;
  std::string version;
  std::string capabilities_json;
  std::string state;              // daemon vocabulary: "idle", "busy", "lost", ...
  std::string current_lease_id;
  int64_t registered_ms = 0;
  int64_t last_heartbeat_ms = 0;
  bool operator==(const Worker&) const = default;
};

// family `prompts`, key (run, prompt).
struct Prompt {
  std::string run_id;
  std::string id;
  std::vector<Message> messages;
  std::string split;   // "train" or "eval"
  std::string source;  // upload file name, dataset name, ...
  int64_t created_ms = 0;
  bool operator==(const Prompt&) const = default;
};

// family `samples`, key (run, round, prompt, idx). Tokens are stored as
// packed little-endian int32 (4 bytes per id), not as text.
struct Sample {
  std::string run_id;
  uint32_t round = 0;
  std::string prompt_id;
  uint32_t idx = 0;                 // 0..K-1 within (round, prompt)
  std::vector<int32_t> tokens;      // response token ids
  std::string text;                 // decoded response
  double logprob = 0;               // sum of token log-probabilities under the policy (nats)
  std::optional<double> rm_score;   // reward-model score; absent until scored
  std::string policy_checkpoint_id;
  std::string rm_checkpoint_id;
  float temperature = 1.0f;
  uint64_t seed = 0;
  bool selected = false;            // best-of-K, kept as SFT data
  std::string task_id;              // the rejection_sample task that produced it
  int64_t created_ms = 0;
  bool operator==(const Sample&) const = default;
};

// family `annotations`, key (run, id): a human preference as uploaded.
struct Annotation {
  std::string run_id;
  std::string id;
  std::string raw;                    // the line as received (verbatim)
  std::string format;                 // "pairwise", "ranked", "hh_rlhf", "ultrafeedback", "request_answer"
  // Normalised form: the prompt and the responses best first. A pairwise
  // record has responses {chosen, rejected}.
  std::vector<Message> prompt;
  std::vector<std::string> responses;
  std::string strength;               // significantly_better | better | slightly_better | marginally_better
  std::optional<std::string> edited;  // edited response, ranks above responses[0]
  std::string annotator;
  std::string request_id;             // the annotation request it answers, if any
  uint32_t round = 0;                 // round in which it was received
  std::string source_file;            // upload name or Idempotency-Key
  uint64_t source_line = 0;           // 1-based line in the upload
  int64_t received_ms = 0;
  bool operator==(const Annotation&) const = default;
};

// family `annotation_requests`, key (run, id): a pair herd wants humans to
// compare, drawn from two different recent models.
struct AnnotationRequest {
  std::string run_id;
  std::string id;
  uint32_t round = 0;
  std::string prompt_id;
  std::vector<Message> prompt;
  std::string response_a;
  std::string response_b;
  std::string checkpoint_a;           // model that produced response_a
  std::string checkpoint_b;
  std::string state;                  // "pending", "answered", "expired"
  std::string annotation_id;          // set when answered
  int64_t created_ms = 0;
  int64_t answered_ms = 0;
  bool operator==(const AnnotationRequest&) const = default;
};

// family `pairs`, key (run, round, id): a preference pair used for RM/DPO.
struct Pair {
  std::string run_id;
  uint32_t round = 0;
  std::string id;
  std::vector<Message> prompt;
  std::string chosen;
  std::string rejected;
  std::string strength;
  std::optional<std::string> edited;  // ranks above chosen
  std::string source;                 // "upload", "request", "synthetic"
  std::string annotation_id;          // the annotation it came from ("" if synthetic)
  std::string annotator;
  int64_t created_ms = 0;
  bool operator==(const Pair&) const = default;
};

// family `checkpoints`, key (id).
struct Checkpoint {
  std::string id;
  std::string run_id;
  std::string path;                   // relative to the artifact root (ArtifactStore)
  std::string sha256;                 // hex; ArtifactStore::HashDirectory for a directory
  std::string config_hash;            // hex sha256 of the model config.json
  std::string stage;                  // "base", "rm", "sft", "dpo", ...
  uint32_t round = 0;
  std::string variant;                // "" for an averaged / single checkpoint
  std::vector<std::string> parents;   // checkpoint ids it was trained from / averaged from
  std::vector<std::string> datasets;  // dataset refs (e.g. "sft:r2", "pairs:r1")
  std::string hyperparameters_json;
  std::vector<double> averaging_weights;  // one per parent when averaged, else empty
  std::string metrics_json;
  uint64_t size_bytes = 0;
  int64_t created_ms = 0;
  // Why a task could not load it ("" = not known to be corrupt); stages
  // then use the last good checkpoint instead (RunView::LastGood).
  std::string corrupt;
  bool operator==(const Checkpoint&) const = default;
};

// family `events`, key (run, seq): audit log of transitions.
struct Event {
  std::string run_id;
  uint64_t seq = 0;          // store-allocated, strictly increasing (WriteTxn::AppendEvent)
  int64_t time_ms = 0;
  std::string kind;          // "run.created", "stage.succeeded", ...
  std::string message;
  std::string detail_json;
  bool operator==(const Event&) const = default;
};

// family `idempotency`, key (key): the response first given for a key.
struct IdempotencyRecord {
  std::string key;
  std::string request_hash;  // hex sha256 of the request, to detect key reuse with a new body
  int32_t status_code = 0;
  std::string content_type;
  std::string body;
  int64_t created_ms = 0;
  bool operator==(const IdempotencyRecord&) const = default;
};

// family `dataset_members`, key (run, round, dataset, member): which records
// made a materialised dataset of a round (the lineage model, docs/store.md).
// dataset is "sft" (members are samples), "rm" or "dpo" (members are pairs).
struct DatasetMember {
  std::string run_id;
  uint32_t round = 0;        // the round whose stage consumed the dataset
  std::string dataset;
  // For samples: (member_round, prompt_id, idx). For pairs: (member_round, id).
  uint32_t member_round = 0;
  std::string member_id;     // prompt id (samples) or pair id (pairs)
  uint32_t member_idx = 0;   // sample idx; 0 for pairs
  bool operator==(const DatasetMember&) const = default;
};

}  // namespace herd::stores
