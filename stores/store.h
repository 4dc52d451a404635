#pragma once
// The herd store: one RocksDB database under <data-dir>/db with a column
// family per entity (docs/store.md), typed tables over the records in
// stores/records.h, atomic multi-record writes (WriteTxn), counters, id
// allocation, paginated listings and online backups.
//
// Thread safety: all methods are safe to call concurrently. WriteTxn is not
// shared between threads. Read-modify-write sequences (read a task, change
// it, write it) need the caller's own serialisation (the daemon's scheduler
// is the single writer of tasks).
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "stores/records.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace herd::stores {

// Column families. The order is the order of kFamilyNames; persisted names,
// not numbers, identify a family on disk.
enum class Family : uint8_t {
  kMeta = 0,
  kRuns,
  kRounds,
  kTasks,
  kTaskQueue,
  kWorkers,
  kPrompts,
  kSamples,
  kAnnotations,
  kAnnotationRequests,
  kPairs,
  kCheckpoints,
  kEvents,
  kIdempotency,
  kCounters,
  kDatasetMembers,
  kCount
};
const char* FamilyName(Family f);

// The schema version this build writes. A database with a newer version is
// refused at open; an older one is migrated (docs/store.md, "Migrations").
inline constexpr uint32_t kSchemaVersion = 1;

struct StoreOptions {
  // Root of herd's state; the database lives in <data_dir>/db and artifacts
  // in <data_dir>/artifacts. Default: none (required).
  std::string data_dir;
  // Open this database directory instead of <data_dir>/db (e.g. a backup).
  // Default: "" (use <data_dir>/db).
  std::string db_path;
  // Create the database when missing. Default: true.
  bool create_if_missing = true;
  // Shared LRU block cache for all families, bytes. Default: 64 MiB.
  uint64_t block_cache_bytes = 64ull << 20;
  // Memtable budget across all families, bytes (WriteBufferManager).
  // Default: 256 MiB.
  uint64_t total_write_buffer_bytes = 256ull << 20;
  // Background flush + compaction threads. Default: 2 (the CI machines have 2 cores).
  int background_jobs = 2;
  // Largest page a listing returns; bigger page_size requests are clamped
  // (AIP-158). Default: 1000.
  uint32_t max_page_size = 1000;
  // page_size used when a request gives 0. Default: 100.
  uint32_t default_page_size = 100;
  // Records a filtered listing (requests by state, checkpoints by run) may
  // scan for one page; past it the page is returned short, with a token.
  // Bounds the work of one request. Default: 10000.
  uint32_t max_scan_per_page = 10000;
  // Ids reserved per durable write of the id high-water mark (Store::NewId);
  // a crash skips at most this many. Default: 1024.
  uint64_t id_block = 1024;
  // Open read-only (no writes, no migrations). Default: false.
  bool read_only = false;
  // Free space the data dir's filesystem keeps in reserve: a write that
  // finds less free is refused (Unavailable, "disk full") before RocksDB
  // sees it, and writes resume by themselves once space is freed. RocksDB
  // must never meet ENOSPC on its WAL: Debian's 7.8 aborts the process on
  // an assertion there (docs/store.md "A full disk"). herdd sets it
  // (--min-free-disk-mb, 64 MiB). Default: 0 (no check).
  uint64_t min_free_bytes = 0;
};

// How a commit reaches disk. kSync (fsync of the WAL before returning) for
// anything acknowledged to a client or a worker; kBuffered only for data
// that can be regenerated (bulk imports that are checked afterwards, benches).
enum class Durability { kSync, kBuffered };

// AIP-158 page request: page_size 0 → default; > max → max; page_token ""
// is the first page, otherwise the next_page_token of the previous page of
// the SAME listing (same collection and filter).
struct PageRequest {
  uint32_t page_size = 0;
  std::string page_token;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;  // "" on the last page
};

class Store;

// A set of writes applied atomically by Store::Commit: all or nothing, also
// across a crash. Build one, fill it, commit it; reuse after Clear().
class WriteTxn {
 public:
  explicit WriteTxn(Store* store);
  ~WriteTxn();
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;
  WriteTxn(WriteTxn&&) noexcept;
  WriteTxn& operator=(WriteTxn&&) noexcept;

  void PutRun(const Run& r);
  void DeleteRun(const std::string& run_id);
  void PutRound(const Round& r);
  // Writes the task and its task_queue entry. `previous` is the task as
  // stored before this change (nullptr for a new task); its queue entry is
  // removed when state or priority changed. Terminal states keep an index
  // entry too, so finished tasks can be listed by state.
  void PutTask(const Task& t, const Task* previous = nullptr);
  void DeleteTask(const Task& t);
  void PutWorker(const Worker& w);
  void DeleteWorker(const std::string& worker_id);
  void PutPrompt(const Prompt& p);
  void PutSample(const Sample& s);
  void PutAnnotation(const Annotation& a);
  void PutAnnotationRequest(const AnnotationRequest& r);
  void PutPair(const Pair& p);
  void PutCheckpoint(const Checkpoint& c);
  void DeleteCheckpoint(const std::string& checkpoint_id);
  // Allocates e.seq (when 0) from the store's event sequence and writes it.
  // Returns the seq used.
  uint64_t AppendEvent(Event e);
  void PutIdempotency(const IdempotencyRecord& r);
  void PutDatasetMember(const DatasetMember& m);
  // Counter += delta (two's-complement wrap for negative deltas) through the
  // uint64add merge operator; no read needed.
  void AddCounter(const std::string& name, int64_t delta);

  // The first error met while filling (an empty or oversize id, a failed
  // seq allocation); Commit returns it and writes nothing.
  const Status& status() const { return status_; }
  size_t Count() const;      // operations in the batch
  size_t ByteSize() const;   // encoded batch size, bytes
  void Clear();

 private:
  friend class Store;
  void Put(Family f, const std::string& key, const std::string& value);
  void Delete(Family f, const std::string& key);
  void DeleteRange(Family f, const std::string& lo, const std::string& hi);
  void Check(const std::string& v, const char* field);  // key strings: non-empty, bounded
  Store* store_;
  Status status_;  // first error while filling; Commit returns it
  std::unique_ptr<rocksdb::WriteBatch> batch_;
  std::string scratch_;  // reused value buffer (no per-put allocation once warm)
};

class Store {
 public:
  // Opens (or creates) the database, checks the schema version, runs
  // migrations, loads the instance secret. Errors: FailedPrecondition for a
  // newer schema, IoError/DataLoss from RocksDB.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  uint32_t schema_version() const { return schema_version_; }
  const std::string& instance_id() const { return instance_id_; }

  WriteTxn NewTxn() { return WriteTxn(this); }
  Status Commit(WriteTxn& txn, Durability d = Durability::kSync);

  // ---- ids and sequences ---------------------------------------------------
  // A new id "<prefix>-<n>" with n from a monotonic, crash-safe counter
  // shared by all prefixes; prefix must match [a-z0-9]+. Never reuses an id,
  // even after a crash (gaps are possible).
  Result<std::string> NewId(const std::string& prefix);

  // A worker record in its own synced batch (registration).
  Status PutWorker(const Worker& w);

  // ---- point reads (NotFound names the record) -----------------------------
  Result<Run> GetRun(const std::string& run_id);
  Result<Round> GetRound(const std::string& run_id, uint32_t round);
  Result<Worker> GetWorker(const std::string& worker_id);
  Result<Prompt> GetPrompt(const std::string& run_id, const std::string& prompt_id);
  Result<Annotation> GetAnnotation(const std::string& run_id, const std::string& id);
  Result<AnnotationRequest> GetAnnotationRequest(const std::string& run_id, const std::string& id);
  Result<Checkpoint> GetCheckpoint(const std::string& checkpoint_id);
  Result<IdempotencyRecord> GetIdempotency(const std::string& key);
  // 0 when the counter was never written.
  Result<uint64_t> GetCounter(const std::string& name);

  // ---- paginated listings (key order; docs/store.md "Page tokens") ---------
  Result<Page<Run>> ListRuns(const PageRequest& req);
  Result<Page<Round>> ListRounds(const std::string& run_id, const PageRequest& req);
  Result<Page<Prompt>> ListPrompts(const std::string& run_id, const PageRequest& req);
  // round nullopt: all rounds of the run.
  Result<Page<Sample>> ListSamples(const std::string& run_id, std::optional<uint32_t> round,
                                   const PageRequest& req);
  Result<Page<Annotation>> ListAnnotations(const std::string& run_id, const PageRequest& req);
  // state "" lists every state; otherwise only requests in that state.
  Result<Page<AnnotationRequest>> ListAnnotationRequests(const std::string& run_id,
                                                         const std::string& state,
                                                         const PageRequest& req);
  Result<Page<Pair>> ListPairs(const std::string& run_id, std::optional<uint32_t> round,
                               const PageRequest& req);
  // run_id "" lists every checkpoint.
  Result<Page<Checkpoint>> ListCheckpoints(const std::string& run_id, const PageRequest& req);
  Result<Page<Event>> ListEvents(const std::string& run_id, const PageRequest& req);

  // ---- streaming scans (no page limit; the callback returns false to stop) -
  // These never hold more than one record; export and the daemon's stage
  // materialisation use them.
  Status ForEachPrompt(const std::string& run_id, const std::function<bool(const Prompt&)>& fn);
  Status ForEachSample(const std::string& run_id, std::optional<uint32_t> round,
                       const std::function<bool(const Sample&)>& fn);
  Status ForEachAnnotation(const std::string& run_id, const std::function<bool(const Annotation&)>& fn);
  Status ForEachPair(const std::string& run_id, std::optional<uint32_t> round,
                     const std::function<bool(const Pair&)>& fn);
  Status ForEachTask(const std::function<bool(const Task&)>& fn);
  Status ForEachCheckpoint(const std::string& run_id, const std::function<bool(const Checkpoint&)>& fn);

  // ---- lineage (docs/store.md "Lineage") -----------------------------------
  // Which samples made the SFT set of round r (the members of dataset "sft").
  Status ForEachSftSample(const std::string& run_id, uint32_t round,
                          const std::function<bool(const Sample&)>& fn);

  // ---- deletion --------------------------------------------------------------
  // Deletes every record of a run (run, rounds, prompts, samples,
  // annotations, requests, pairs, its checkpoints, events, dataset members,
  // and its tasks with their queue entries) in synced batches. Artifacts are
  // ArtifactStore::DeleteRun's job.
  Status DeleteRunData(const std::string& run_id);

  // ---- backups ---------------------------------------------------------------
  // Online, consistent snapshot (rocksdb::Checkpoint: hard links where
  // possible) into target_dir, which must not exist yet.
  Status CreateBackup(const std::string& target_dir);
  // Copies a backup into <data_dir>/db. Refuses when <data_dir>/db exists
  // unless overwrite; then the old db is moved to <data_dir>/db.replaced-<ms>.
  // The store must not be open on data_dir.
  static Status RestoreBackup(const std::string& backup_dir, const std::string& data_dir,
                              bool overwrite = false);

  // ---- metrics ---------------------------------------------------------------
  // RocksDB "rocksdb.estimate-live-data-size" (SST files only, so data
  // still in memtables is not counted) and
  // "rocksdb.estimate-pending-compaction-bytes", summed over families.
  uint64_t LiveDataBytes();
  uint64_t PendingCompactionBytes();

  // ---- low level (the bench's raw-RocksDB baseline; tests that corrupt values)
  rocksdb::DB* raw_db() { return db_; }
  rocksdb::ColumnFamilyHandle* handle(Family f) { return handles_[static_cast<size_t>(f)]; }

 private:
  Store() = default;
  // The next value of the store-wide sequence (≥ 1, strictly increasing
  // across restarts): event seqs (WriteTxn::AppendEvent).
  Result<uint64_t> NextSeq();
  // A value as stored (meta at open and in migrations).
  Result<std::string> RawGet(Family f, const std::string& key);
  // Point reads behind the lineage join.
  Result<Sample> GetSample(const std::string& run_id, uint32_t round, const std::string& prompt_id,
                           uint32_t idx);
  Status ForEachDatasetMember(const std::string& run_id, uint32_t round, const std::string& dataset,
                              const std::function<bool(const DatasetMember&)>& fn);
  // Page tokens (docs/store.md "Listings and page tokens").
  std::string MakePageToken(const std::string& scope, const std::string& last_key) const;
  Result<std::string> ParsePageToken(const std::string& scope, const std::string& token) const;
  uint32_t ClampPageSize(uint32_t requested) const;
  Status OpenImpl(const StoreOptions& options);
  Status CheckAndMigrate();
  Result<uint64_t> Allocate();

  // Scans [lo, hi) in `f`, calling fn(key, value) until it returns false.
  Status Scan(Family f, const std::string& lo, const std::string& hi,
              const std::function<bool(const std::string&, const std::string&)>& fn);
  template <typename T>
  Result<Page<T>> ListPage(Family f, const std::string& scope, const std::string& prefix,
                           const PageRequest& req, const std::function<bool(const T&)>& filter);
  template <typename T>
  Result<T> GetRecord(Family f, const std::string& key, const std::string& what);
  template <typename T>
  Status ForEach(Family f, const std::string& prefix, const std::function<bool(const T&)>& fn);

  friend class WriteTxn;
  StoreOptions options_;
  std::string db_path_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_handle_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by Family; unknown families after
  uint32_t schema_version_ = 0;
  std::string instance_id_;
  std::string token_key_;  // HMAC key for page tokens (32 bytes, in meta)

  // Every write checks the free-space reserve first.
  Status CheckWritable();

  std::mutex id_mu_;
  uint64_t id_next_ = 0;   // next value to hand out
  uint64_t id_limit_ = 0;  // first value not yet reserved durably
};

}  // namespace herd::stores
