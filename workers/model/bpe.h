#pragma once
// Byte-level BPE merging (HF tokenizers' BPE model, without dropout,
// subword prefixes or byte fallback): a pre-token's bytes start as one
// symbol per byte, then the adjacent pair with the lowest merge rank is
// merged until no pair has a rank. Ties (the same pair twice) go to the
// leftmost, as HF's heap does.
//
// Fast path: a per-thread cache of whole pre-tokens → ids (bounded, cleared
// when full), an open-addressing table (left id, right id) → (rank, merged
// id), and for words of up to kLinearMax symbols a linear scan for the best
// pair instead of a heap.
//
// Thread-safety: immutable after construction; EncodeWord may run on any
// number of threads at once (the cache is thread_local, keyed by model).
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace herd::model {

// Lets an unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class BpeModel {
 public:
  struct Merge {
    int32_t left, right, merged;  // ids; rank = index in the merge list
  };
  struct Options {
    // Id of each byte's single-character token; -1 when the vocab lacks it.
    std::array<int32_t, 256> byte_ids{};
    std::vector<Merge> merges;
    // A pre-token that is itself in the vocab is one token, unmerged
    // (Llama 3). Keys are the token's bytes. Empty unless ignore_merges.
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> whole_words;
    bool ignore_merges = false;
    // A byte without a token becomes unk_id (-1: dropped, as HF does
    // without an unk_token); fuse_unk joins adjacent unknown bytes.
    int32_t unk_id = -1;
    bool fuse_unk = false;
  };

  explicit BpeModel(Options options);

  // Appends the ids of one pre-token (raw bytes; never empty).
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  // Words with at most this many symbols find the best pair by scanning.
  static constexpr size_t kLinearMax = 48;
  // Words up to this many bytes are cached.
  static constexpr size_t kCacheMaxBytes = 64;

 private:
  struct PairValue {
    int32_t rank, merged;
  };
  // The (rank, merged id) of a pair; rank -1 when the pair never merges.
  PairValue Lookup(int32_t left, int32_t right) const {
    const uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    size_t i = (key * 0x9E3779B97F4A7C15ull) >> shift_;
    while (true) {
      const Slot& s = table_[i];
      if (s.key == key) return {s.rank, s.merged};
      if (s.key == kEmpty) return {-1, -1};
      i = (i + 1) & mask_;
    }
  }
  void Merge(std::string_view word, std::vector<int32_t>* out) const;
  void MergeLinear(std::vector<int32_t>* out) const;
  void MergeHeap(std::vector<int32_t>* out) const;

  static constexpr uint64_t kEmpty = ~0ull;  // no pair of ids >= 0 has this key
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = -1, merged = -1;
  };
  std::vector<Slot> table_;  // (capacity), a power of two >= 2 * merges
  size_t mask_ = 0;
  int shift_ = 64;
  Options o_;
  uint64_t cache_key_;  // unique per model, never reused: names its thread caches
};

}  // namespace herd::model
