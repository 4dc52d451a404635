#include "workers/model/bpe.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <cstring>

namespace herd::model {
namespace {

// A 64-bit hash of a short byte string; never 0 (0 marks an empty slot).
uint64_t HashBytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    p += 8, n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * 0x94D049BB133111EBull;
    h ^= h >> 32;
  }
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  return h | 1;
}

// Pre-token → ids for one model on one thread. Open addressing over
// kSlots; keys and ids live in two arenas. Full (kSlots / 2 words) → cleared:
// cheaper than LRU bookkeeping, and a text's common words come back fast.
class WordCache {
 public:
  static constexpr size_t kSlots = size_t{1} << 15;  // ~16k words, ~0.5 MiB of slots

  uint64_t owner = 0;  // BpeModel::cache_key_; 0 = unused

  // The cached ids of word, or false.
  bool Get(std::string_view word, uint64_t hash, std::vector<int32_t>* out) const {
    if (slots_.empty()) return false;
    for (size_t i = hash & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Entry& e = slots_[i];
      if (e.hash == 0) return false;
      if (e.hash == hash && e.key_len == word.size() &&
          std::memcmp(keys_.data() + e.key_off, word.data(), word.size()) == 0) {
        out->insert(out->end(), ids_.begin() + e.ids_off, ids_.begin() + e.ids_off + e.n_ids);
        return true;
      }
    }
  }

  void Put(std::string_view word, uint64_t hash, const int32_t* ids, size_t n) {
    if (slots_.empty()) slots_.resize(kSlots);
    if (used_ >= kSlots / 2) Clear();
    size_t i = hash & (kSlots - 1);
    while (slots_[i].hash != 0) i = (i + 1) & (kSlots - 1);
    slots_[i] = {hash, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(ids_.size()),
                 static_cast<uint16_t>(word.size()), static_cast<uint16_t>(n)};
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + n);
    ++used_;
  }

  void Reset(uint64_t new_owner) {
    owner = new_owner;
    Clear();
  }

 private:
  struct Entry {
    uint64_t hash = 0;
    uint32_t key_off = 0, ids_off = 0;
    uint16_t key_len = 0, n_ids = 0;
  };
  void Clear() {
    std::fill(slots_.begin(), slots_.end(), Entry{});
    keys_.clear();
    ids_.clear();
    used_ = 0;
  }
  std::vector<Entry> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t used_ = 0;
};

// Two caches per thread: enough for a process that alternates between a
// policy's and a reference model's tokenizer without thrashing.
WordCache& ThreadCache(uint64_t owner) {
  thread_local std::array<WordCache, 2> caches;
  thread_local size_t victim = 0;
  for (WordCache& c : caches) {
    if (c.owner == owner) return c;
  }
  WordCache& c = caches[victim];
  victim = (victim + 1) % caches.size();
  c.Reset(owner);
  return c;
}

// Scratch for one word's merge, reused across calls on a thread.
struct MergeScratch {
  std::vector<int32_t> ids;     // (symbols)
  std::vector<int32_t> ranks;   // (symbols - 1): rank of pair (i, i+1), INT_MAX = none
  std::vector<int32_t> merged;  // (symbols - 1): id the pair merges into
  std::vector<int32_t> next, prev;
  struct Candidate {
    int32_t rank, pos, left, right;
    // std::*_heap keep the largest on top: invert to pop the lowest rank,
    // then the leftmost position.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Candidate> heap;
  std::vector<int32_t> result;
};

MergeScratch& ThreadScratch() {
  thread_local MergeScratch s;
  return s;
}

std::atomic<uint64_t> next_cache_key{1};

}  // namespace

BpeModel::BpeModel(Options options) : o_(std::move(options)) {
  cache_key_ = next_cache_key.fetch_add(1);
  size_t capacity = 16;
  while (capacity < 2 * o_.merges.size()) capacity *= 2;
  table_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  for (size_t r = 0; r < o_.merges.size(); ++r) {
    const auto& m = o_.merges[r];
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(m.left)) << 32) |
                         static_cast<uint32_t>(m.right);
    size_t i = (key * 0x9E3779B97F4A7C15ull) >> shift_;
    while (table_[i].key != kEmpty && table_[i].key != key) i = (i + 1) & mask_;
    // A pair listed twice keeps its last rank, as HF's map (built in list
    // order) does.
    table_[i] = {key, static_cast<int32_t>(r), m.merged};
  }
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.size() > kCacheMaxBytes) {
    Merge(word, out);
    return;
  }
  WordCache& cache = ThreadCache(cache_key_);
  const uint64_t hash = HashBytes(word.data(), word.size());
  if (cache.Get(word, hash, out)) return;
  const size_t before = out->size();
  Merge(word, out);
  cache.Put(word, hash, out->data() + before, out->size() - before);
}

void BpeModel::Merge(std::string_view word, std::vector<int32_t>* out) const {
  if (o_.ignore_merges) {
    if (auto it = o_.whole_words.find(word); it != o_.whole_words.end()) {
      out->push_back(it->second);
      return;
    }
  }
  MergeScratch& s = ThreadScratch();
  s.ids.clear();
  bool last_unk = false;
  for (unsigned char b : word) {
    const int32_t id = o_.byte_ids[b];
    if (id >= 0) {
      s.ids.push_back(id);
      last_unk = false;
    } else if (o_.unk_id >= 0) {
      if (!(last_unk && o_.fuse_unk)) s.ids.push_back(o_.unk_id);
      last_unk = true;
    }
  }
  if (s.ids.size() <= kLinearMax) {
    MergeLinear(out);
  } else {
    MergeHeap(out);
  }
}

// O(n^2) in symbols, but n is small and the arrays stay in L1.
void BpeModel::MergeLinear(std::vector<int32_t>* out) const {
  MergeScratch& s = ThreadScratch();
  std::vector<int32_t>& ids = s.ids;
  size_t n = ids.size();
  if (n == 0) return;
  s.ranks.resize(n);
  s.merged.resize(n);
  int32_t* ranks = s.ranks.data();
  int32_t* merged = s.merged.data();
  auto set_pair = [&](size_t i) {
    const PairValue v = Lookup(ids[i], ids[i + 1]);
    ranks[i] = v.rank < 0 ? INT_MAX : v.rank;
    merged[i] = v.merged;
  };
  for (size_t i = 0; i + 1 < n; ++i) set_pair(i);
  while (n > 1) {
    size_t best = 0;
    int32_t best_rank = ranks[0];
    for (size_t i = 1; i + 1 < n; ++i) {
      if (ranks[i] < best_rank) best_rank = ranks[i], best = i;
    }
    if (best_rank == INT_MAX) break;
    ids[best] = merged[best];
    // Drop symbol best+1 and pair best+1.
    for (size_t i = best + 1; i + 1 < n; ++i) ids[i] = ids[i + 1];
    for (size_t i = best + 1; i + 2 < n; ++i) ranks[i] = ranks[i + 1], merged[i] = merged[i + 1];
    --n;
    if (best + 1 < n) set_pair(best);
    if (best > 0) set_pair(best - 1);
  }
  out->insert(out->end(), ids.begin(), ids.begin() + static_cast<ptrdiff_t>(n));
}

// HF's algorithm for long words: a doubly linked list of symbols and a heap
// of candidate pairs, each checked against the current symbols when popped.
void BpeModel::MergeHeap(std::vector<int32_t>* out) const {
  MergeScratch& s = ThreadScratch();
  const int32_t n = static_cast<int32_t>(s.ids.size());
  std::vector<int32_t>& ids = s.ids;
  s.next.resize(n);
  s.prev.resize(n);
  for (int32_t i = 0; i < n; ++i) s.next[i] = i + 1 < n ? i + 1 : -1, s.prev[i] = i - 1;
  auto& heap = s.heap;
  heap.clear();
  auto push = [&](int32_t pos) {
    const int32_t nx = s.next[pos];
    if (nx < 0) return;
    const PairValue v = Lookup(ids[pos], ids[nx]);
    if (v.rank < 0) return;
    heap.push_back({v.rank, pos, ids[pos], ids[nx]});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const MergeScratch::Candidate c = heap.back();
    heap.pop_back();
    // Stale: the left symbol was absorbed (ids[pos] = -1), or either side
    // has merged since this pair was pushed.
    const int32_t nx = s.next[c.pos];
    if (ids[c.pos] != c.left || nx < 0 || ids[nx] != c.right) continue;
    ids[c.pos] = Lookup(c.left, c.right).merged;
    ids[nx] = -1;
    s.next[c.pos] = s.next[nx];
    if (s.next[nx] >= 0) s.prev[s.next[nx]] = c.pos;
    push(c.pos);
    if (s.prev[c.pos] >= 0) push(s.prev[c.pos]);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = s.next[i]) out->push_back(ids[i]);
}

}  // namespace herd::model
