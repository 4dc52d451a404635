// bench_store: write throughput of the typed store next to raw RocksDB
// WriteBatches of the same bytes, and the scan speed an export reads at.
//
//   bench_store [--samples N] [--pairs N] [--batch N] [--dir /tmp/...]
//
// Phases (each on a fresh database under --dir, removed at the end):
//   1. raw:   1M sample key/value pairs, pre-encoded before timing, written
//             as WriteBatches of --batch puts into the samples family of a
//             store opened with the same options (so only the typed layer
//             differs);
//   2. store: the same 1M samples built as Sample records and written
//             through WriteTxn::PutSample + Store::Commit (encode + checksum
//             included in the timing);
//   3. pairs: 100K pairs through WriteTxn, raw for comparison likewise;
//   4. scan:  ForEachPair over all pairs (the read under an export), records/s;
//   5. sync:  200 single-record commits with sync=true (acknowledged-write latency).
// Both throughput phases commit with Durability::kBuffered (WAL written, not
// fsynced per batch): the bench measures the store's overhead, not the disk.
// Prints figures; never fails on time.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "stores/layout.h"
#include "stores/store.h"
#include "stores/value_codec.h"

namespace fs = std::filesystem;
using namespace herd::stores;
using Clock = std::chrono::steady_clock;

namespace {

double Secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::unique_ptr<Store> OpenFresh(const std::string& dir) {
  StoreOptions o;
  o.data_dir = dir;
  auto s = Store::Open(o);
  if (!s.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), s.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

void FillSample(uint64_t i, std::mt19937& rng, Sample* s) {
  s->run_id = "run-1";
  s->round = uint32_t(i % 6 + 1);
  s->prompt_id = "prompt-" + std::to_string(i / 16);
  s->idx = uint32_t(i % 16);
  s->tokens.resize(64);
  for (auto& t : s->tokens) t = int32_t(rng() % 128256);
  s->text.assign(256, char('a' + i % 26));  // ~4 chars per token
  s->logprob = -double(rng() % 1000) / 10;
  s->rm_score = double(rng() % 1000) / 1000;
  s->policy_checkpoint_id = "ckpt-12";
  s->rm_checkpoint_id = "ckpt-13";
  s->temperature = 0.7f;
  s->seed = i;
  s->selected = (i % 16) == 0;
  s->task_id = "task-" + std::to_string(i / 4096);
  s->created_ms = 1764547200000 + int64_t(i);
}

void FillPair(uint64_t i, Pair* p) {
  p->run_id = "run-1";
  p->round = uint32_t(i % 6 + 1);
  p->id = "pair-" + std::to_string(i);
  p->prompt = {{"system", "You are a helpful assistant."},
               {"user", "Question number " + std::to_string(i) + std::string(120, 'q')}};
  p->chosen.assign(400, 'c');
  p->rejected.assign(380, 'r');
  p->strength = (i % 4 == 0) ? "significantly_better" : "better";
  if (i % 10 == 0) p->edited = std::string(420, 'e');
  p->source = "upload";
  p->annotation_id = "ann-" + std::to_string(i);
  p->annotator = "annotator-" + std::to_string(i % 50);
  p->created_ms = 1764547200000 + int64_t(i);
}

struct Arena {
  std::string bytes;
  std::vector<std::pair<uint64_t, uint32_t>> keys, values;  // (offset, size)
  void Add(const std::string& k, const std::string& v) {
    keys.push_back({bytes.size(), uint32_t(k.size())});
    bytes += k;
    values.push_back({bytes.size(), uint32_t(v.size())});
    bytes += v;
  }
};

double RawWrite(Store& st, Family f, const Arena& a, size_t batch) {
  rocksdb::WriteOptions wo;  // sync=false, same as Durability::kBuffered
  rocksdb::WriteBatch wb;
  auto* h = st.handle(f);
  auto t0 = Clock::now();
  for (size_t i = 0; i < a.keys.size(); ++i) {
    wb.Put(h, rocksdb::Slice(a.bytes.data() + a.keys[i].first, a.keys[i].second),
           rocksdb::Slice(a.bytes.data() + a.values[i].first, a.values[i].second));
    if (wb.Count() == uint32_t(batch) || i + 1 == a.keys.size()) {
      auto s = st.raw_db()->Write(wo, &wb);
      if (!s.ok()) {
        std::fprintf(stderr, "raw write: %s\n", s.ToString().c_str());
        std::exit(1);
      }
      wb.Clear();
    }
  }
  return Secs(t0, Clock::now());
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n_samples = 1000000, n_pairs = 100000;
  size_t batch = 1000;
  std::string dir = "/tmp/herd-bench-store-" + std::to_string(::getpid());
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--samples") n_samples = std::stoull(argv[i + 1]);
    else if (a == "--pairs") n_pairs = std::stoull(argv[i + 1]);
    else if (a == "--batch") batch = std::stoull(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::printf("bench_store: %llu samples (64 tokens each), %llu pairs, batch %zu, dir %s\n",
              (unsigned long long)n_samples, (unsigned long long)n_pairs, batch, dir.c_str());

  // ---- samples: pre-encode for the raw phase (not timed) --------------------
  Arena sa;
  sa.bytes.reserve(n_samples * 520);
  {
    std::mt19937 rng(1);
    Sample s;
    std::string v;
    for (uint64_t i = 0; i < n_samples; ++i) {
      FillSample(i, rng, &s);
      Encode(s, &v);
      sa.Add(layout::Sample(s.run_id, s.round, s.prompt_id, s.idx), v);
    }
  }
  const double sample_mb = double(sa.bytes.size()) / 1e6;
  {
    // CPU cost of the value codec alone (the disk hides it in the phases below).
    std::mt19937 rng(1);
    Sample s;
    FillSample(7, rng, &s);
    std::string v;
    const int n = 1000000;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      s.idx = uint32_t(i);
      Encode(s, &v);
    }
    double enc = Secs(t0, Clock::now());
    Sample back;
    t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      if (!Decode(v, &back).ok()) return 1;
    }
    double dec = Secs(t0, Clock::now());
    std::printf("codec: encode %.2f M samples/s (%.0f MB/s), decode %.2f M samples/s\n", n / enc / 1e6,
                double(v.size()) * n / enc / 1e6, n / dec / 1e6);
  }
  std::printf("samples: %.1f MB of keys+values (%.0f B per record)\n", sample_mb,
              double(sa.bytes.size()) / double(n_samples));

  double raw_s, store_s;
  {
    auto st = OpenFresh(dir + "/raw-samples");
    raw_s = RawWrite(*st, Family::kSamples, sa, batch);
  }
  {
    auto st = OpenFresh(dir + "/store-samples");
    std::mt19937 rng(1);
    Sample s;
    WriteTxn txn = st->NewTxn();
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < n_samples; ++i) {
      FillSample(i, rng, &s);  // record construction is the caller's cost, but counted here
      txn.PutSample(s);
      if (txn.Count() == batch || i + 1 == n_samples) {
        auto c = st->Commit(txn, Durability::kBuffered);
        if (!c.ok()) {
          std::fprintf(stderr, "commit: %s\n", c.ToString().c_str());
          return 1;
        }
        txn.Clear();
      }
    }
    store_s = Secs(t0, Clock::now());
  }
  std::printf("samples raw   WriteBatch: %9.0f writes/s  %7.1f MB/s  (%.2f s)\n", double(n_samples) / raw_s,
              sample_mb / raw_s, raw_s);
  std::printf("samples store WriteTxn  : %9.0f writes/s  %7.1f MB/s  (%.2f s)  = %.0f%% of raw\n",
              double(n_samples) / store_s, sample_mb / store_s, store_s, 100.0 * raw_s / store_s);
  sa = Arena();

  // ---- pairs ------------------------------------------------------------------
  Arena pa;
  {
    Pair p;
    std::string v;
    for (uint64_t i = 0; i < n_pairs; ++i) {
      FillPair(i, &p);
      Encode(p, &v);
      pa.Add(layout::Pair(p.run_id, p.round, p.id), v);
    }
  }
  const double pair_mb = double(pa.bytes.size()) / 1e6;
  {
    auto st = OpenFresh(dir + "/raw-pairs");
    raw_s = RawWrite(*st, Family::kPairs, pa, batch);
  }
  pa = Arena();
  auto st = OpenFresh(dir + "/store-pairs");
  {
    Pair p;
    WriteTxn txn = st->NewTxn();
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < n_pairs; ++i) {
      FillPair(i, &p);
      txn.PutPair(p);
      if (txn.Count() == batch || i + 1 == n_pairs) {
        if (!st->Commit(txn, Durability::kBuffered).ok()) return 1;
        txn.Clear();
      }
    }
    store_s = Secs(t0, Clock::now());
  }
  std::printf("pairs: %.1f MB of keys+values (%.0f B per record)\n", pair_mb, pair_mb * 1e6 / double(n_pairs));
  std::printf("pairs   raw   WriteBatch: %9.0f writes/s  %7.1f MB/s  (%.2f s)\n", double(n_pairs) / raw_s,
              pair_mb / raw_s, raw_s);
  std::printf("pairs   store WriteTxn  : %9.0f writes/s  %7.1f MB/s  (%.2f s)  = %.0f%% of raw\n",
              double(n_pairs) / store_s, pair_mb / store_s, store_s, 100.0 * raw_s / store_s);

  // ---- scan (what an export reads) ----------------------------------------------
  {
    auto t0 = Clock::now();
    uint64_t n = 0, bytes = 0;
    herd::Status ss = st->ForEachPair("run-1", std::nullopt, [&](const Pair& p) {
      ++n;
      bytes += p.chosen.size() + p.rejected.size();
      return true;
    });
    double s = Secs(t0, Clock::now());
    if (!ss.ok()) {
      std::fprintf(stderr, "scan: %s\n", ss.ToString().c_str());
      return 1;
    }
    std::printf("scan pairs: %llu records (%.1f MB of responses) in %.2f s = %.0f records/s\n",
                (unsigned long long)n, double(bytes) / 1e6, s, double(n) / s);
  }

  // ---- acknowledged (sync) single-record commits -----------------------------------
  {
    Pair p;
    FillPair(0, &p);
    const int n = 200;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      p.id = "sync-" + std::to_string(i);
      WriteTxn txn = st->NewTxn();
      txn.PutPair(p);
      if (!st->Commit(txn, Durability::kSync).ok()) return 1;
    }
    double s = Secs(t0, Clock::now());
    std::printf("sync=true single-pair commits: %d in %.2f s = %.2f ms each\n", n, s, 1e3 * s / n);
  }
  st.reset();
  fs::remove_all(dir);
  return 0;
}
