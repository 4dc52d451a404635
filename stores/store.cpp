#include "stores/store.h"

#include <sys/statvfs.h>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "stores/keys.h"
#include "stores/layout.h"
#include "stores/value_codec.h"
#include "common/sha256.h"

namespace herd::stores {

namespace fs = std::filesystem;
namespace L = layout;

// ---- names -------------------------------------------------------------------

namespace {
constexpr const char* kFamilyNames[] = {
    "meta", "runs", "rounds", "tasks", "task_queue", "workers", "prompts", "samples", "annotations",
    "annotation_requests", "pairs", "checkpoints", "events", "idempotency", "counters", "dataset_members"};
static_assert(sizeof(kFamilyNames) / sizeof(kFamilyNames[0]) == size_t(Family::kCount));

constexpr const char* kMetaSchemaVersion = "schema_version";
constexpr const char* kMetaInstanceId = "instance_id";
constexpr const char* kMetaTokenKey = "page_token_key";
constexpr const char* kMetaIdHighWater = "id_high_water";
constexpr const char* kMetaCreatedMs = "created_ms";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  std::string m = what + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(m);
  if (s.IsCorruption()) return Status::DataLoss(m);
  if (s.IsNoSpace()) return Status::Unavailable(m + " (disk full: free space on the data dir's filesystem)");
  if (s.IsIOError()) return Status::IoError(m);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return Status::Unavailable(m);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(m);
  return Status::Internal(m);
}

std::string RandomBytes(size_t n) {
  std::random_device rd;
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rd();
    for (size_t j = 0; j < 4 && i + j < n; ++j) s[i + j] = char(v >> (8 * j));
  }
  return s;
}

std::string BE32(uint32_t v) {
  std::string s;
  PutU32BE(&s, v);
  return s;
}
std::string BE64(uint64_t v) {
  std::string s;
  PutU64BE(&s, v);
  return s;
}

bool ValidIdPrefix(const std::string& p) {
  if (p.empty() || p.size() > 32) return false;
  return std::all_of(p.begin(), p.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

// ---- migrations ------------------------------------------------------------
// Each migration moves the schema from `from` to from + 1 inside one synced
// WriteBatch together with the version bump (docs/store.md "Migrations").
struct Migration {
  uint32_t from;
  const char* what;
  Status (*apply)(Store& store, rocksdb::WriteBatch& batch);
};

Status MigrateCreate(Store& store, rocksdb::WriteBatch& b) {
  auto* meta = store.handle(Family::kMeta);
  // Instance id: 16 random bytes in hex. Page-token HMAC key: 32 random bytes.
  std::string id = RandomBytes(16);
  b.Put(meta, kMetaInstanceId, ToHex(reinterpret_cast<const uint8_t*>(id.data()), id.size()));
  b.Put(meta, kMetaTokenKey, RandomBytes(32));
  b.Put(meta, kMetaIdHighWater, BE64(1));
  b.Put(meta, kMetaCreatedMs, BE64(uint64_t(NowMs())));
  return Status::Ok();
}

const Migration kMigrations[] = {
    {0, "v0 -> v1: create (instance id, page-token key, id high-water mark)", &MigrateCreate},
};

}  // namespace

const char* FamilyName(Family f) {
  size_t i = size_t(f);
  return i < size_t(Family::kCount) ? kFamilyNames[i] : "?";
}

const char* TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kQueued: return "queued";
    case TaskState::kLeased: return "leased";
    case TaskState::kSucceeded: return "succeeded";
    case TaskState::kFailed: return "failed";
    case TaskState::kCancelled: return "cancelled";
  }
  return "?";
}
bool ParseTaskState(const std::string& name, TaskState* out) {
  for (uint8_t i = 0; i <= uint8_t(TaskState::kCancelled); ++i) {
    if (name == TaskStateName(TaskState(i))) {
      *out = TaskState(i);
      return true;
    }
  }
  return false;
}

// ---- WriteTxn ------------------------------------------------------------------

WriteTxn::WriteTxn(Store* store) : store_(store), batch_(std::make_unique<rocksdb::WriteBatch>()) {}
WriteTxn::~WriteTxn() = default;
WriteTxn::WriteTxn(WriteTxn&&) noexcept = default;
WriteTxn& WriteTxn::operator=(WriteTxn&&) noexcept = default;

void WriteTxn::Check(const std::string& v, const char* field) {
  if (!status_.ok()) return;
  if (v.empty()) {
    status_ = Status::InvalidArgument(std::string(field) + " is empty");
  } else if (v.size() > L::kMaxKeyString) {
    status_ = Status::InvalidArgument(std::string(field) + " longer than " + std::to_string(L::kMaxKeyString) +
                                      " bytes");
  }
}

void WriteTxn::Put(Family f, const std::string& key, const std::string& value) {
  auto s = batch_->Put(store_->handle(f), key, value);
  if (!s.ok() && status_.ok()) status_ = FromRocks(s, std::string("batch put ") + FamilyName(f));
}
void WriteTxn::Delete(Family f, const std::string& key) {
  auto s = batch_->Delete(store_->handle(f), key);
  if (!s.ok() && status_.ok()) status_ = FromRocks(s, std::string("batch delete ") + FamilyName(f));
}
void WriteTxn::DeleteRange(Family f, const std::string& lo, const std::string& hi) {
  auto s = batch_->DeleteRange(store_->handle(f), lo, hi);
  if (!s.ok() && status_.ok()) status_ = FromRocks(s, std::string("batch delete range ") + FamilyName(f));
}

void WriteTxn::PutRun(const Run& r) {
  Check(r.id, "run.id");
  Encode(r, &scratch_);
  Put(Family::kRuns, L::Id(r.id), scratch_);
}
void WriteTxn::DeleteRun(const std::string& run_id) { Delete(Family::kRuns, L::Id(run_id)); }
void WriteTxn::PutRound(const Round& r) {
  Check(r.run_id, "round.run_id");
  Encode(r, &scratch_);
  Put(Family::kRounds, L::RunRound(r.run_id, r.round), scratch_);
}
void WriteTxn::PutTask(const Task& t, const Task* previous) {
  Check(t.id, "task.id");
  Encode(t, &scratch_);
  Put(Family::kTasks, L::Id(t.id), scratch_);
  std::string qk = L::Queue(t.state, t.priority, t.queue_seq, t.id);
  if (previous) {
    std::string old = L::Queue(previous->state, previous->priority, previous->queue_seq, previous->id);
    if (old != qk) Delete(Family::kTaskQueue, old);
  }
  Put(Family::kTaskQueue, qk, t.id);
}
void WriteTxn::DeleteTask(const Task& t) {
  Delete(Family::kTasks, L::Id(t.id));
  Delete(Family::kTaskQueue, L::Queue(t.state, t.priority, t.queue_seq, t.id));
}
void WriteTxn::PutWorker(const Worker& w) {
  Check(w.id, "worker.id");
  Encode(w, &scratch_);
  Put(Family::kWorkers, L::Id(w.id), scratch_);
}
void WriteTxn::DeleteWorker(const std::string& id) { Delete(Family::kWorkers, L::Id(id)); }
void WriteTxn::PutPrompt(const Prompt& p) {
  Check(p.run_id, "prompt.run_id");
  Check(p.id, "prompt.id");
  Encode(p, &scratch_);
  Put(Family::kPrompts, L::RunName(p.run_id, p.id), scratch_);
}
void WriteTxn::PutSample(const Sample& s) {
  Check(s.run_id, "sample.run_id");
  Check(s.prompt_id, "sample.prompt_id");
  Encode(s, &scratch_);
  Put(Family::kSamples, L::Sample(s.run_id, s.round, s.prompt_id, s.idx), scratch_);
}
void WriteTxn::PutAnnotation(const Annotation& a) {
  Check(a.run_id, "annotation.run_id");
  Check(a.id, "annotation.id");
  Encode(a, &scratch_);
  Put(Family::kAnnotations, L::RunName(a.run_id, a.id), scratch_);
}
void WriteTxn::PutAnnotationRequest(const AnnotationRequest& r) {
  Check(r.run_id, "annotation_request.run_id");
  Check(r.id, "annotation_request.id");
  Encode(r, &scratch_);
  Put(Family::kAnnotationRequests, L::RunName(r.run_id, r.id), scratch_);
}
void WriteTxn::PutPair(const Pair& p) {
  Check(p.run_id, "pair.run_id");
  Check(p.id, "pair.id");
  Encode(p, &scratch_);
  Put(Family::kPairs, L::Pair(p.run_id, p.round, p.id), scratch_);
}
void WriteTxn::PutCheckpoint(const Checkpoint& c) {
  Check(c.id, "checkpoint.id");
  Encode(c, &scratch_);
  Put(Family::kCheckpoints, L::Id(c.id), scratch_);
}
void WriteTxn::DeleteCheckpoint(const std::string& id) { Delete(Family::kCheckpoints, L::Id(id)); }
uint64_t WriteTxn::AppendEvent(Event e) {
  Check(e.run_id, "event.run_id");
  if (e.seq == 0) {
    auto seq = store_->NextSeq();
    if (!seq.ok()) {
      if (status_.ok()) status_ = seq.status();
      return 0;
    }
    e.seq = *seq;
  }
  if (e.time_ms == 0) e.time_ms = NowMs();
  Encode(e, &scratch_);
  Put(Family::kEvents, L::Event(e.run_id, e.seq), scratch_);
  return e.seq;
}
void WriteTxn::PutIdempotency(const IdempotencyRecord& r) {
  Check(r.key, "idempotency.key");
  Encode(r, &scratch_);
  Put(Family::kIdempotency, L::Id(r.key), scratch_);
}
void WriteTxn::PutDatasetMember(const DatasetMember& m) {
  Check(m.run_id, "dataset_member.run_id");
  Check(m.dataset, "dataset_member.dataset");
  Check(m.member_id, "dataset_member.member_id");
  Encode(m, &scratch_);
  Put(Family::kDatasetMembers, L::DatasetMember(m), scratch_);
}
void WriteTxn::AddCounter(const std::string& name, int64_t delta) {
  Check(name, "counter name");
  std::string op;
  PutU64LE(&op, uint64_t(delta));  // two's complement: adding 2^64 - d subtracts d
  auto s = batch_->Merge(store_->handle(Family::kCounters), L::Id(name), op);
  if (!s.ok() && status_.ok()) status_ = FromRocks(s, "batch merge counters");
}

size_t WriteTxn::Count() const { return size_t(batch_->Count()); }
size_t WriteTxn::ByteSize() const { return batch_->GetDataSize(); }
void WriteTxn::Clear() {
  batch_->Clear();
  status_ = Status::Ok();
}

// ---- open / schema ---------------------------------------------------------------

namespace {

struct FamilyTuning {
  bool bulk;          // large, scanned, compressible (samples, pairs, ...)
  bool queue;         // many deletes: compact tombstones early
  bool merge_counter; // uint64add
};

FamilyTuning TuningFor(Family f) {
  switch (f) {
    case Family::kSamples:
    case Family::kPairs:
    case Family::kPrompts:
    case Family::kAnnotations:
    case Family::kAnnotationRequests:
    case Family::kEvents:
    case Family::kDatasetMembers:
      return {true, false, false};
    case Family::kTaskQueue:
      return {false, true, false};
    case Family::kCounters:
      return {false, false, true};
    default:
      return {false, false, false};
  }
}

rocksdb::CompressionType BestCompression() {
  auto have = rocksdb::GetSupportedCompressions();
  for (auto want : {rocksdb::kLZ4Compression, rocksdb::kSnappyCompression}) {
    if (std::find(have.begin(), have.end(), want) != have.end()) return want;
  }
  return rocksdb::kNoCompression;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::unique_ptr<Store> s(new Store());
  Status st = s->OpenImpl(options);
  if (!st.ok()) return st;
  return s;
}

Status Store::OpenImpl(const StoreOptions& options) {
  options_ = options;
  if (options_.data_dir.empty() && options_.db_path.empty()) {
    return Status::InvalidArgument("StoreOptions.data_dir is empty");
  }
  db_path_ = options_.db_path.empty() ? (fs::path(options_.data_dir) / "db").string() : options_.db_path;
  if (options_.max_page_size == 0) return Status::InvalidArgument("StoreOptions.max_page_size is 0");
  if (options_.id_block == 0) return Status::InvalidArgument("StoreOptions.id_block is 0");
  if (options_.max_scan_per_page == 0) return Status::InvalidArgument("StoreOptions.max_scan_per_page is 0");
  std::error_code ec;
  if (options_.create_if_missing && !options_.read_only) {
    fs::create_directories(fs::path(db_path_).parent_path(), ec);
    if (ec) return Status::IoError("create " + fs::path(db_path_).parent_path().string() + ": " + ec.message());
  }

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = options_.create_if_missing;
  dbo.create_missing_column_families = true;
  dbo.max_background_jobs = options_.background_jobs;
  dbo.bytes_per_sync = 1 << 20;       // smooth SST writeback instead of bursts at file close
  dbo.wal_bytes_per_sync = 0;         // WAL durability comes from sync=true writes
  dbo.keep_log_file_num = 5;
  dbo.max_total_wal_size = 512ull << 20;  // force flush of cold families so WAL replay stays short
  dbo.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(size_t(options_.total_write_buffer_bytes));
  dbo.paranoid_checks = true;

  // Counters need the built-in uint64add; without it merges would fail at
  // read time, so refuse to open instead.
  std::shared_ptr<rocksdb::MergeOperator> counter_op;
  HERD_RETURN_IF_ERROR(FromRocks(
      rocksdb::MergeOperator::CreateFromString(rocksdb::ConfigOptions(), "uint64add", &counter_op),
      "create the uint64add merge operator"));
  auto cache = rocksdb::NewLRUCache(size_t(options_.block_cache_bytes));
  const auto compression = BestCompression();
  auto make_cf = [&](Family f) {
    rocksdb::ColumnFamilyOptions co;
    FamilyTuning t = TuningFor(f);
    rocksdb::BlockBasedTableOptions to;
    to.block_cache = cache;
    to.cache_index_and_filter_blocks = true;
    to.pin_l0_filter_and_index_blocks_in_cache = true;
    to.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // ~1% false positives on point gets
    to.block_size = t.bulk ? 16 * 1024 : 4 * 1024;
    to.format_version = 5;
    co.table_factory.reset(rocksdb::NewBlockBasedTableFactory(to));
    co.level_compaction_dynamic_level_bytes = true;
    co.write_buffer_size = t.bulk ? (64ull << 20) : (8ull << 20);
    co.compression = t.bulk ? compression : rocksdb::kNoCompression;
    co.bottommost_compression = t.bulk ? rocksdb::kZSTD : rocksdb::kNoCompression;
    if (t.bulk) {
      auto have = rocksdb::GetSupportedCompressions();
      if (std::find(have.begin(), have.end(), rocksdb::kZSTD) == have.end()) co.bottommost_compression = compression;
    }
    if (t.queue) {
      // A queue sees one delete per state change; compact a file once 64 of
      // any 128 consecutive entries are tombstones so pulls stay fast.
      co.table_properties_collector_factories.push_back(
          rocksdb::NewCompactOnDeletionCollectorFactory(128, 64));
    }
    if (t.merge_counter) co.merge_operator = counter_op;
    return co;
  };

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  // RocksDB requires the default family; it holds nothing.
  descs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (size_t i = 0; i < size_t(Family::kCount); ++i) {
    descs.emplace_back(kFamilyNames[i], make_cf(Family(i)));
  }
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(dbo, db_path_, &existing).ok()) {
    for (const auto& name : existing) {
      bool known = std::any_of(descs.begin(), descs.end(), [&](auto& d) { return d.name == name; });
      // A family from a newer build: open it untouched so the schema check
      // below can refuse with a clear message instead of RocksDB's.
      if (!known) descs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
  } else if (!options_.create_if_missing) {
    return Status::NotFound("no herd database at " + db_path_);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> hs;
  rocksdb::DB* db = nullptr;
  rocksdb::Status rs = options_.read_only ? rocksdb::DB::OpenForReadOnly(dbo, db_path_, descs, &hs, &db)
                                          : rocksdb::DB::Open(dbo, db_path_, descs, &hs, &db);
  if (!rs.ok()) return FromRocks(rs, "open " + db_path_);
  db_ = db;
  default_handle_ = hs[0];
  handles_.assign(hs.begin() + 1, hs.end());
  HERD_RETURN_IF_ERROR(CheckAndMigrate());

  auto id = RawGet(Family::kMeta, kMetaInstanceId);
  auto key = RawGet(Family::kMeta, kMetaTokenKey);
  auto hw = RawGet(Family::kMeta, kMetaIdHighWater);
  if (!id.ok() || !key.ok() || !hw.ok() || key->size() != 32 || hw->size() != 8) {
    return Status::DataLoss("meta in " + db_path_ + ": instance id, page-token key or id high-water mark missing");
  }
  instance_id_ = *id;
  token_key_ = *key;
  id_next_ = id_limit_ = GetU64BE(hw->data());
  return Status::Ok();
}

Status Store::CheckAndMigrate() {
  uint32_t version = 0;
  auto v = RawGet(Family::kMeta, kMetaSchemaVersion);
  if (v.ok()) {
    if (v->size() != 4) return Status::DataLoss("meta/schema_version in " + db_path_ + ": not 4 bytes");
    version = GetU32BE(v->data());
  } else if (!v.status().IsNotFound()) {
    return v.status();
  }
  if (version > kSchemaVersion) {
    return Status::FailedPrecondition("database " + db_path_ + " has schema version " + std::to_string(version) +
                                      ", newer than this build's " + std::to_string(kSchemaVersion) +
                                      "; run a newer herd (refusing to open)");
  }
  while (version < kSchemaVersion) {
    if (options_.read_only) {
      return Status::FailedPrecondition("database " + db_path_ + " has schema version " + std::to_string(version) +
                                        " and needs migration, but it was opened read-only");
    }
    const Migration* m = nullptr;
    for (const auto& cand : kMigrations) {
      if (cand.from == version) m = &cand;
    }
    if (!m) return Status::Internal("no migration from schema version " + std::to_string(version));
    rocksdb::WriteBatch b;
    HERD_RETURN_IF_ERROR(m->apply(*this, b).WithContext(std::string("migration ") + m->what));
    b.Put(handle(Family::kMeta), kMetaSchemaVersion, BE32(version + 1));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    HERD_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &b), std::string("migration ") + m->what));
    ++version;
  }
  schema_version_ = version;
  return Status::Ok();
}

Store::~Store() {
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    if (default_handle_) db_->DestroyColumnFamilyHandle(default_handle_);
    db_->Close();
    delete db_;
  }
}

Status Store::Commit(WriteTxn& txn, Durability d) {
  if (!txn.status_.ok()) return txn.status_;
  if (options_.read_only) return Status::FailedPrecondition("store opened read-only");
  HERD_RETURN_IF_ERROR(CheckWritable());
  rocksdb::WriteOptions wo;
  wo.sync = (d == Durability::kSync);
  return FromRocks(db_->Write(wo, txn.batch_.get()), "commit");
}

Status Store::CheckWritable() {
  if (options_.min_free_bytes > 0) {
    struct statvfs fs;
    if (statvfs(db_path_.c_str(), &fs) == 0) {
      const uint64_t free_bytes = uint64_t(fs.f_bavail) * fs.f_frsize;
      if (free_bytes < options_.min_free_bytes) {
        return Status::Unavailable("disk full: " + std::to_string(free_bytes >> 20) + " MiB free on the filesystem of " +
                                   db_path_ + ", below the reserve of " +
                                   std::to_string(options_.min_free_bytes >> 20) +
                                   " MiB; writes resume by themselves once space is freed");
      }
    }
  }
  return Status::Ok();
}

Status Store::PutWorker(const Worker& w) {
  WriteTxn t(this);
  t.PutWorker(w);
  return Commit(t, Durability::kSync);
}

// ---- ids -------------------------------------------------------------------------

Result<uint64_t> Store::Allocate() {
  std::lock_guard<std::mutex> lock(id_mu_);
  if (id_next_ >= id_limit_) {
    if (options_.read_only) return Status::FailedPrecondition("store opened read-only");
    // Reserve a block durably before handing any of it out: after a crash the
    // next open starts past everything that may have been used.
    uint64_t new_limit = std::max<uint64_t>(id_next_, 1) + options_.id_block;
    HERD_RETURN_IF_ERROR(CheckWritable());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    HERD_RETURN_IF_ERROR(
        FromRocks(db_->Put(wo, handle(Family::kMeta), kMetaIdHighWater, BE64(new_limit)), "reserve ids"));
    id_limit_ = new_limit;
    if (id_next_ == 0) id_next_ = 1;
  }
  return id_next_++;
}

Result<uint64_t> Store::NextSeq() { return Allocate(); }

Result<std::string> Store::NewId(const std::string& prefix) {
  if (!ValidIdPrefix(prefix)) {
    return Status::InvalidArgument("id prefix '" + prefix + "' must match [a-z0-9]{1,32}");
  }
  HERD_ASSIGN_OR_RETURN(uint64_t n, Allocate());
  return prefix + "-" + std::to_string(n);
}

Result<std::string> Store::RawGet(Family f, const std::string& key) {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), handle(f), key, &v);
  if (s.IsNotFound()) return Status::NotFound(std::string(FamilyName(f)) + " key " + KeyForDisplay(key));
  HERD_RETURN_IF_ERROR(FromRocks(s, std::string("get ") + FamilyName(f) + " key " + KeyForDisplay(key)));
  return v;
}

template <typename T>
Result<T> Store::GetRecord(Family f, const std::string& key, const std::string& what) {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), handle(f), key, &v);
  if (s.IsNotFound()) return Status::NotFound(what + " not found");
  HERD_RETURN_IF_ERROR(FromRocks(s, "get " + what));
  T rec;
  Status d = Decode(v, &rec);
  if (!d.ok()) {
    return Status::DataLoss(std::string(FamilyName(f)) + " key " + KeyForDisplay(key) + " (" + what +
                            "): " + d.message());
  }
  return rec;
}

namespace {
std::string Q(const std::string& s) { return "'" + s + "'"; }
}  // namespace

Result<Run> Store::GetRun(const std::string& id) { return GetRecord<Run>(Family::kRuns, L::Id(id), "run " + Q(id)); }
Result<Round> Store::GetRound(const std::string& run, uint32_t round) {
  return GetRecord<Round>(Family::kRounds, L::RunRound(run, round),
                          "round " + std::to_string(round) + " of run " + Q(run));
}
Result<Worker> Store::GetWorker(const std::string& id) {
  return GetRecord<Worker>(Family::kWorkers, L::Id(id), "worker " + Q(id));
}
Result<Prompt> Store::GetPrompt(const std::string& run, const std::string& id) {
  return GetRecord<Prompt>(Family::kPrompts, L::RunName(run, id), "prompt " + Q(id) + " of run " + Q(run));
}
Result<Sample> Store::GetSample(const std::string& run, uint32_t round, const std::string& prompt, uint32_t idx) {
  return GetRecord<Sample>(Family::kSamples, L::Sample(run, round, prompt, idx),
                           "sample " + std::to_string(idx) + " of prompt " + Q(prompt) + " round " +
                               std::to_string(round) + " run " + Q(run));
}
Result<Annotation> Store::GetAnnotation(const std::string& run, const std::string& id) {
  return GetRecord<Annotation>(Family::kAnnotations, L::RunName(run, id),
                               "annotation " + Q(id) + " of run " + Q(run));
}
Result<AnnotationRequest> Store::GetAnnotationRequest(const std::string& run, const std::string& id) {
  return GetRecord<AnnotationRequest>(Family::kAnnotationRequests, L::RunName(run, id),
                                      "annotation request " + Q(id) + " of run " + Q(run));
}
Result<Checkpoint> Store::GetCheckpoint(const std::string& id) {
  return GetRecord<Checkpoint>(Family::kCheckpoints, L::Id(id), "checkpoint " + Q(id));
}
Result<IdempotencyRecord> Store::GetIdempotency(const std::string& key) {
  return GetRecord<IdempotencyRecord>(Family::kIdempotency, L::Id(key), "idempotency key " + Q(key));
}
Result<uint64_t> Store::GetCounter(const std::string& name) {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), handle(Family::kCounters), L::Id(name), &v);
  if (s.IsNotFound()) return uint64_t(0);
  HERD_RETURN_IF_ERROR(FromRocks(s, "get counter " + Q(name)));
  if (v.size() != 8) {
    return Status::DataLoss("counters key " + Q(name) + ": value is " + std::to_string(v.size()) +
                            " bytes, want 8");
  }
  return GetU64LE(v.data());
}

// ---- scans -------------------------------------------------------------------------

Status Store::Scan(Family f, const std::string& lo, const std::string& hi,
                   const std::function<bool(const std::string&, const std::string&)>& fn) {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(hi);
  ro.iterate_upper_bound = &upper;  // hi is never empty: see layout::kWholeFamilyHi
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handle(f)));
  std::string k, v;
  for (it->Seek(lo); it->Valid(); it->Next()) {
    k.assign(it->key().data(), it->key().size());
    v.assign(it->value().data(), it->value().size());
    if (!fn(k, v)) return Status::Ok();
  }
  return FromRocks(it->status(), std::string("scan ") + FamilyName(f));
}

namespace {
std::string UpperFor(const std::string& prefix) {
  if (prefix.empty()) return L::kWholeFamilyHi;
  std::string s = PrefixSuccessor(prefix);
  return s.empty() ? L::kWholeFamilyHi : s;
}
}  // namespace

template <typename T>
Status Store::ForEach(Family f, const std::string& prefix, const std::function<bool(const T&)>& fn) {
  Status err;
  T rec;
  HERD_RETURN_IF_ERROR(Scan(f, prefix, UpperFor(prefix), [&](const std::string& k, const std::string& v) {
    Status d = Decode(v, &rec);
    if (!d.ok()) {
      err = Status::DataLoss(std::string(FamilyName(f)) + " key " + KeyForDisplay(k) + ": " + d.message());
      return false;
    }
    return fn(rec);
  }));
  return err;
}

uint32_t Store::ClampPageSize(uint32_t requested) const {
  if (requested == 0) return std::min(options_.default_page_size, options_.max_page_size);
  return std::min(requested, options_.max_page_size);
}

// Token = base64url( 0x01 | last_key | HMAC-SHA256(key, 0x01 | Str(scope) | last_key)[0:16] ).
std::string Store::MakePageToken(const std::string& scope, const std::string& last_key) const {
  std::string body(1, '\x01');
  body += last_key;
  std::string mac_in = std::string(1, '\x01') + KeyWriter().Str(scope).str() + last_key;
  auto mac = HmacSha256(token_key_, mac_in);
  body.append(reinterpret_cast<const char*>(mac.data()), 16);
  return Base64UrlEncode(body);
}

Result<std::string> Store::ParsePageToken(const std::string& scope, const std::string& token) const {
  std::string raw;
  if (!Base64UrlDecode(token, &raw) || raw.size() < 17 || raw[0] != '\x01') {
    return Status::InvalidArgument("page_token is malformed");
  }
  std::string last_key = raw.substr(1, raw.size() - 17);
  std::string mac_in = std::string(1, '\x01') + KeyWriter().Str(scope).str() + last_key;
  auto mac = HmacSha256(token_key_, mac_in);
  if (!ConstantTimeEqual(std::string_view(raw).substr(raw.size() - 16),
                         std::string_view(reinterpret_cast<const char*>(mac.data()), 16))) {
    return Status::InvalidArgument("page_token is invalid for this listing (tampered, or from another listing)");
  }
  return last_key;
}

template <typename T>
Result<Page<T>> Store::ListPage(Family f, const std::string& scope, const std::string& prefix,
                                const PageRequest& req, const std::function<bool(const T&)>& filter) {
  const uint32_t size = ClampPageSize(req.page_size);
  std::string full_scope = std::string(FamilyName(f)) + "|" + scope;
  std::string lo = prefix;
  if (!req.page_token.empty()) {
    HERD_ASSIGN_OR_RETURN(std::string last, ParsePageToken(full_scope, req.page_token));
    if (last.compare(0, prefix.size(), prefix) != 0) return Status::InvalidArgument("page_token is invalid");
    lo = last;
    lo.push_back('\0');  // the smallest key after `last`
  }
  Page<T> page;
  std::string last_key;
  bool more = false;
  uint32_t scanned = 0;
  bool budget_hit = false;
  Status err;
  T rec;
  HERD_RETURN_IF_ERROR(Scan(f, lo, UpperFor(prefix), [&](const std::string& k, const std::string& v) {
    if (page.items.size() == size || budget_hit) {
      more = true;
      return false;
    }
    Status d = Decode(v, &rec);
    if (!d.ok()) {
      err = Status::DataLoss(std::string(FamilyName(f)) + " key " + KeyForDisplay(k) + ": " + d.message());
      return false;
    }
    last_key = k;
    if (!filter || filter(rec)) page.items.push_back(rec);
    // Past the scan budget the page ends short; the next entry (if any) is
    // only peeked at above, so a page ending exactly at the end has no token.
    if (filter && ++scanned >= options_.max_scan_per_page) budget_hit = true;
    return true;
  }));
  HERD_RETURN_IF_ERROR(err);
  if (more) page.next_page_token = MakePageToken(full_scope, last_key);
  return page;
}

namespace {
std::string RoundScope(std::optional<uint32_t> round) {
  return round ? "r" + std::to_string(*round) : "all";
}
std::string RunOrRoundPrefix(const std::string& run, std::optional<uint32_t> round) {
  return round ? L::RunRound(run, *round) : L::RunPrefix(run);
}
}  // namespace

Result<Page<Run>> Store::ListRuns(const PageRequest& req) { return ListPage<Run>(Family::kRuns, "", "", req, {}); }
Result<Page<Round>> Store::ListRounds(const std::string& run, const PageRequest& req) {
  return ListPage<Round>(Family::kRounds, run, L::RunPrefix(run), req, {});
}
Result<Page<Prompt>> Store::ListPrompts(const std::string& run, const PageRequest& req) {
  return ListPage<Prompt>(Family::kPrompts, run, L::RunPrefix(run), req, {});
}
Result<Page<Sample>> Store::ListSamples(const std::string& run, std::optional<uint32_t> round,
                                        const PageRequest& req) {
  return ListPage<Sample>(Family::kSamples, run + "|" + RoundScope(round), RunOrRoundPrefix(run, round), req, {});
}
Result<Page<Annotation>> Store::ListAnnotations(const std::string& run, const PageRequest& req) {
  return ListPage<Annotation>(Family::kAnnotations, run, L::RunPrefix(run), req, {});
}
Result<Page<AnnotationRequest>> Store::ListAnnotationRequests(const std::string& run, const std::string& state,
                                                              const PageRequest& req) {
  std::function<bool(const AnnotationRequest&)> filter;
  if (!state.empty()) filter = [&](const AnnotationRequest& r) { return r.state == state; };
  return ListPage<AnnotationRequest>(Family::kAnnotationRequests, run + "|" + state, L::RunPrefix(run), req, filter);
}
Result<Page<Pair>> Store::ListPairs(const std::string& run, std::optional<uint32_t> round, const PageRequest& req) {
  return ListPage<Pair>(Family::kPairs, run + "|" + RoundScope(round), RunOrRoundPrefix(run, round), req, {});
}
Result<Page<Checkpoint>> Store::ListCheckpoints(const std::string& run, const PageRequest& req) {
  std::function<bool(const Checkpoint&)> filter;
  if (!run.empty()) filter = [&](const Checkpoint& c) { return c.run_id == run; };
  return ListPage<Checkpoint>(Family::kCheckpoints, run, "", req, filter);
}
Result<Page<Event>> Store::ListEvents(const std::string& run, const PageRequest& req) {
  return ListPage<Event>(Family::kEvents, run, L::RunPrefix(run), req, {});
}

Status Store::ForEachPrompt(const std::string& run, const std::function<bool(const Prompt&)>& fn) {
  return ForEach<Prompt>(Family::kPrompts, L::RunPrefix(run), fn);
}
Status Store::ForEachSample(const std::string& run, std::optional<uint32_t> round,
                            const std::function<bool(const Sample&)>& fn) {
  return ForEach<Sample>(Family::kSamples, RunOrRoundPrefix(run, round), fn);
}
Status Store::ForEachAnnotation(const std::string& run, const std::function<bool(const Annotation&)>& fn) {
  return ForEach<Annotation>(Family::kAnnotations, L::RunPrefix(run), fn);
}
Status Store::ForEachPair(const std::string& run, std::optional<uint32_t> round,
                          const std::function<bool(const Pair&)>& fn) {
  return ForEach<Pair>(Family::kPairs, RunOrRoundPrefix(run, round), fn);
}
Status Store::ForEachTask(const std::function<bool(const Task&)>& fn) {
  return ForEach<Task>(Family::kTasks, "", fn);
}
Status Store::ForEachCheckpoint(const std::string& run, const std::function<bool(const Checkpoint&)>& fn) {
  return ForEach<Checkpoint>(Family::kCheckpoints, "", [&](const Checkpoint& c) {
    return (!run.empty() && c.run_id != run) ? true : fn(c);
  });
}
// ---- lineage -------------------------------------------------------------------------

Status Store::ForEachDatasetMember(const std::string& run, uint32_t round, const std::string& dataset,
                                   const std::function<bool(const DatasetMember&)>& fn) {
  return ForEach<DatasetMember>(Family::kDatasetMembers, L::DatasetPrefix(run, round, dataset), fn);
}

Status Store::ForEachSftSample(const std::string& run, uint32_t round, const std::function<bool(const Sample&)>& fn) {
  Status err;
  HERD_RETURN_IF_ERROR(ForEachDatasetMember(run, round, "sft", [&](const DatasetMember& m) {
    auto s = GetSample(run, m.member_round, m.member_id, m.member_idx);
    if (!s.ok()) {
      err = s.status().WithContext("SFT set of round " + std::to_string(round));
      return false;
    }
    return fn(*s);
  }));
  return err;
}

// ---- deletion ------------------------------------------------------------------------

Status Store::DeleteRunData(const std::string& run) {
  if (run.empty()) return Status::InvalidArgument("run id is empty");
  WriteTxn t(this);
  const std::string p = L::RunPrefix(run);
  const std::string hi = UpperFor(p);
  for (Family f : {Family::kRounds, Family::kPrompts, Family::kSamples, Family::kAnnotations,
                   Family::kAnnotationRequests, Family::kPairs, Family::kEvents, Family::kDatasetMembers}) {
    t.DeleteRange(f, p, hi);
  }
  HERD_RETURN_IF_ERROR(ForEachTask([&](const Task& task) {
    if (task.run_id == run) t.DeleteTask(task);
    return true;
  }));
  HERD_RETURN_IF_ERROR(ForEachCheckpoint(run, [&](const Checkpoint& c) {
    t.DeleteCheckpoint(c.id);
    return true;
  }));
  t.DeleteRun(run);
  return Commit(t, Durability::kSync);
}

// ---- backups -------------------------------------------------------------------------

Status Store::CreateBackup(const std::string& target_dir) {
  std::error_code ec;
  if (fs::exists(target_dir, ec)) return Status::AlreadyExists("backup target " + target_dir + " exists");
  rocksdb::Checkpoint* cp = nullptr;
  HERD_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_, &cp), "backup"));
  std::unique_ptr<rocksdb::Checkpoint> owner(cp);
  return FromRocks(cp->CreateCheckpoint(fs::absolute(target_dir).string()), "backup into " + target_dir);
}

Status Store::RestoreBackup(const std::string& backup_dir, const std::string& data_dir, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(fs::path(backup_dir) / "CURRENT", ec)) {
    return Status::NotFound("backup " + backup_dir + " has no CURRENT file (not a RocksDB checkpoint)");
  }
  const fs::path db = fs::path(data_dir) / "db";
  const std::string stamp = std::to_string(NowMs());
  const fs::path tmp = fs::path(data_dir) / ("db.restoring-" + stamp);
  fs::create_directories(data_dir, ec);
  if (ec) return Status::IoError("create " + data_dir + ": " + ec.message());
  if (fs::exists(db, ec) && !overwrite) {
    return Status::AlreadyExists(db.string() + " exists; restore with overwrite to replace it");
  }
  // Copy first, then swap by rename, so a crash mid-copy leaves the old db.
  fs::copy(backup_dir, tmp, fs::copy_options::recursive, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    return Status::IoError("copy " + backup_dir + " to " + tmp.string() + ": " + ec.message());
  }
  if (fs::exists(db, ec)) {
    fs::rename(db, fs::path(data_dir) / ("db.replaced-" + stamp), ec);
    if (ec) return Status::IoError("move aside " + db.string() + ": " + ec.message());
  }
  fs::rename(tmp, db, ec);
  if (ec) return Status::IoError("rename " + tmp.string() + " to " + db.string() + ": " + ec.message());
  return Status::Ok();
}

// ---- metrics --------------------------------------------------------------------------

uint64_t Store::LiveDataBytes() {
  uint64_t total = 0, v = 0;
  for (auto* h : handles_) {
    if (db_->GetIntProperty(h, "rocksdb.estimate-live-data-size", &v)) total += v;
  }
  return total;
}
uint64_t Store::PendingCompactionBytes() {
  uint64_t total = 0, v = 0;
  for (auto* h : handles_) {
    if (db_->GetIntProperty(h, "rocksdb.estimate-pending-compaction-bytes", &v)) total += v;
  }
  return total;
}

}  // namespace herd::stores
