#pragma once
// Internals shared by the objectives' implementations (sft.cpp, reward.cpp,
// dpo.cpp): the seeded per-epoch order of an objective's examples, and the
// count of non-padding tokens in a packed batch. Not for other callers.
#include <cstdint>
#include <utility>
#include <vector>

#include "workers/model/packed_batch.h"

namespace herd::train::detail {

inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Keeps data[k] = original[perm[k]] as the order changes, moving elements
// in place (no copy of the dataset): cur is the current permutation.
template <typename T>
class OrderedData {
 public:
  explicit OrderedData(std::vector<T> d) : data_(std::move(d)), cur_(data_.size()) {
    for (size_t k = 0; k < cur_.size(); ++k) cur_[k] = static_cast<int64_t>(k);
  }
  const std::vector<T>& data() const { return data_; }

  // The order of epoch `epoch`: a seeded Fisher–Yates shuffle of the
  // original order, so any epoch can be reproduced directly on resume.
  void Order(uint64_t seed, int64_t epoch) {
    const size_t n = data_.size();
    std::vector<int64_t> want(n);
    for (size_t k = 0; k < n; ++k) want[k] = static_cast<int64_t>(k);
    uint64_t s = Mix(seed ^ Mix(static_cast<uint64_t>(epoch) + 0x51ed2701ULL));
    for (size_t k = n; k > 1; --k) {
      s = Mix(s);
      std::swap(want[k - 1], want[s % k]);
    }
    // Gather: new[k] = data_[where[want[k]]] with where = cur^-1.
    std::vector<int64_t> where(n), src(n);
    for (size_t k = 0; k < n; ++k) where[cur_[k]] = static_cast<int64_t>(k);
    for (size_t k = 0; k < n; ++k) src[k] = where[want[k]];
    std::vector<uint8_t> done(n, 0);
    for (size_t start = 0; start < n; ++start) {
      if (done[start]) continue;
      // Follow the cycle start ← src[start] ← src[src[start]] ...
      T tmp = std::move(data_[start]);
      size_t k = start;
      while (true) {
        done[k] = 1;
        const auto from = static_cast<size_t>(src[k]);
        if (from == start) {
          data_[k] = std::move(tmp);
          break;
        }
        data_[k] = std::move(data_[from]);
        k = from;
      }
    }
    cur_ = std::move(want);
  }

 private:
  std::vector<T> data_;
  std::vector<int64_t> cur_;
};

inline int64_t CountTokens(const model::PackedBatch& b) {
  int64_t n = 0;
  for (int32_t s : b.segments) n += s >= 0;
  return n;
}

}  // namespace herd::train::detail
