#include "workers/train/row_packing.h"

#include <string>

namespace herd::train {
namespace {

// Next-fit placement over B rows of T tokens: returns false when the sample
// does not fit in the current row nor in a fresh one.
struct RowCursor {
  int64_t B, T;
  int64_t row = 0;
  int64_t fill = 0;
  int32_t next_segment = 0;
  // On success, *at is the flat index of the sample's first token.
  bool Place(int64_t len, int64_t* at) {
    if (fill + len > T) {
      if (row + 1 >= B) return false;
      ++row;
      fill = 0;
      next_segment = 0;
    }
    *at = row * T + fill;
    fill += len;
    return true;
  }
};

// Drops the rows after the last one used (at least one row stays), so a
// short batch (the end of an epoch, an eval tail) costs only its rows.
int64_t RowsUsed(const RowCursor& cur, bool placed) { return placed ? cur.row + 1 : 1; }
void KeepRows(model::PackedBatch* b, int64_t rows) {
  const auto n = static_cast<size_t>(rows * b->T);
  b->B = rows;
  b->tokens.resize(n);
  b->positions.resize(n);
  b->segments.resize(n);
  b->parents.resize(n);
  b->targets.resize(n);
  b->loss_weights.resize(n);
}

// Writes one segment [at, at+len) of tokens with positions starting at pos0.
void WriteSegment(model::PackedBatch* b, int64_t at, const int32_t* ids, int64_t len, int32_t pos0,
                  int32_t segment, int32_t parent) {
  for (int64_t k = 0; k < len; ++k) {
    b->tokens[at + k] = ids[k];
    b->positions[at + k] = pos0 + static_cast<int32_t>(k);
    b->segments[at + k] = segment;
    b->parents[at + k] = parent;
  }
}

// SplitMix64: a seed per sample that depends only on (seed, id).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
uint64_t HashId(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace

Result<int64_t> PackSft(std::span<const SftExample> examples, int64_t B, int64_t T,
                        const SftPackOptions& opts, model::PackedBatch* out) {
  if (B <= 0 || T <= 1) return Status::InvalidArgument("PackSft: need B > 0 and T > 1");
  out->Resize(B, T);
  RowCursor cur{B, T};
  int64_t consumed = 0;
  bool placed = false;
  for (const auto& ex : examples) {
    const std::string where = "SFT example " + std::to_string(consumed);
    if (ex.tokens.empty()) return Status::InvalidArgument(where + ": no tokens");
    if (ex.train.size() != ex.tokens.size()) {
      return Status::InvalidArgument(where + ": train mask has " + std::to_string(ex.train.size()) +
                                     " entries for " + std::to_string(ex.tokens.size()) +
                                     " tokens");
    }
    auto len = static_cast<int64_t>(ex.tokens.size());
    if (len > T) {
      if (!opts.truncate) {
        return Status::InvalidArgument(where + ": " + std::to_string(len) +
                                       " tokens exceed the row length " + std::to_string(T));
      }
      len = T;
    }
    int64_t at = 0;
    if (!cur.Place(len, &at)) break;
    const int32_t seg = cur.next_segment++;
    WriteSegment(out, at, ex.tokens.data(), len, 0, seg, -1);
    for (int64_t k = 0; k + 1 < len; ++k) {
      out->targets[at + k] = ex.tokens[k + 1];
      out->loss_weights[at + k] = ex.train[k + 1] ? 1.0f : 0.0f;
    }
    ++consumed;
    placed = true;
  }
  KeepRows(out, RowsUsed(cur, placed));
  return consumed;
}

Result<int64_t> PackRm(std::span<const RankedSample> samples, const RewardOptions& opts, int64_t B,
                       int64_t T, uint64_t seed, RmBatch* out) {
  if (B <= 0 || T <= 0) return Status::InvalidArgument("PackRm: need B > 0 and T > 0");
  out->batch.Resize(B, T);
  out->reward_index.clear();
  out->response_sample.clear();
  out->response_rank.clear();
  out->pairs.clear();
  RowCursor cur{B, T};
  int64_t consumed = 0;
  bool placed = false;
  for (const auto& s : samples) {
    HERD_ASSIGN_OR_RETURN(ImpliedRanking rank, ImpliedPairs(s, opts));
    if (rank.pairs.empty()) {
      ++consumed;
      continue;
    }
    auto len = static_cast<int64_t>(s.prompt.size());
    for (int32_t u : rank.unique) len += static_cast<int64_t>(s.responses[u].size());
    if (len > T) {
      return Status::InvalidArgument("sample '" + s.id + "': " + std::to_string(len) +
                                     " tokens (prompt + responses) exceed the row length " +
                                     std::to_string(T));
    }
    int64_t at = 0;
    if (!cur.Place(len, &at)) break;
    // Row order of the distinct responses: a seeded Fisher–Yates shuffle, so
    // the scalar head never learns "the first response is the better one".
    const auto u = static_cast<int32_t>(rank.unique.size());
    int32_t order[3] = {0, 1, 2};
    uint64_t state = Mix(seed ^ HashId(s.id));
    for (int32_t k = u - 1; k > 0; --k) {
      state = Mix(state);
      const auto j = static_cast<int32_t>(state % static_cast<uint64_t>(k + 1));
      std::swap(order[k], order[j]);
    }
    const int32_t prompt_seg = cur.next_segment++;
    const auto plen = static_cast<int32_t>(s.prompt.size());
    WriteSegment(&out->batch, at, s.prompt.data(), plen, 0, prompt_seg, -1);
    int64_t off = at + plen;
    const auto base = static_cast<int32_t>(out->reward_index.size());
    int32_t slot_of_unique[3] = {0, 0, 0};
    for (int32_t k = 0; k < u; ++k) {
      const int32_t uq = order[k];
      const auto& resp = s.responses[rank.unique[uq]];
      const auto rlen = static_cast<int64_t>(resp.size());
      WriteSegment(&out->batch, off, resp.data(), rlen, plen, cur.next_segment++, prompt_seg);
      slot_of_unique[uq] = base + k;
      out->reward_index.push_back(off + rlen - 1);
      out->response_sample.push_back(static_cast<int32_t>(consumed));
      out->response_rank.push_back(rank.unique[uq]);
      off += rlen;
    }
    for (const auto& p : rank.pairs) {
      out->pairs.push_back({slot_of_unique[p.chosen], slot_of_unique[p.rejected], p.strength});
    }
    ++consumed;
    placed = true;
  }
  KeepRows(&out->batch, RowsUsed(cur, placed));
  return consumed;
}

int64_t DpoRowLength(const DpoSample& s) {
  return static_cast<int64_t>(s.prompt.size() + 1 + s.chosen.size() + s.rejected.size());
}

Result<int64_t> PackDpo(std::span<const DpoSample> samples, int64_t B, int64_t T, DpoBatch* out) {
  if (B <= 0 || T <= 1) return Status::InvalidArgument("PackDpo: need B > 0 and T > 1");
  model::PackedBatch& b = out->batch;
  b.Resize(B, T);
  out->flags.assign(static_cast<size_t>(B * T), 0);
  out->pair_of.assign(static_cast<size_t>(B * T), -1);
  out->pair_ids.clear();
  out->pair_sample.clear();
  RowCursor cur{B, T};
  int64_t consumed = 0;
  bool placed = false;
  for (const auto& s : samples) {
    const std::string where = "pair '" + s.pair_id + "'";
    if (s.prompt.empty()) return Status::InvalidArgument(where + ": prompt is empty");
    if (s.chosen.empty()) return Status::InvalidArgument(where + ": chosen response is empty");
    if (s.rejected.empty()) return Status::InvalidArgument(where + ": rejected response is empty");
    if (s.chosen_formatting.size() != s.chosen.size()) {
      return Status::InvalidArgument(where + ": chosen_formatting has " +
                                     std::to_string(s.chosen_formatting.size()) + " entries for " +
                                     std::to_string(s.chosen.size()) + " tokens");
    }
    if (s.rejected_formatting.size() != s.rejected.size()) {
      return Status::InvalidArgument(
          where + ": rejected_formatting has " + std::to_string(s.rejected_formatting.size()) +
          " entries for " + std::to_string(s.rejected.size()) + " tokens");
    }
    const int64_t len = DpoRowLength(s);
    if (len > T) {
      return Status::InvalidArgument(where + ": " + std::to_string(len) +
                                     " tokens (prompt + 1 + chosen + rejected) exceed the row "
                                     "length " +
                                     std::to_string(T));
    }
    int64_t at = 0;
    if (!cur.Place(len, &at)) break;
    const auto pair = static_cast<int32_t>(out->pair_ids.size());
    out->pair_ids.push_back(s.pair_id);
    out->pair_sample.push_back(static_cast<int32_t>(consumed));

    // Shared prompt minus its last token; with a one-token prompt it is empty
    // and the responses have no parent.
    const auto head = static_cast<int32_t>(s.prompt.size()) - 1;
    int32_t prompt_seg = -1;
    if (head > 0) {
      prompt_seg = cur.next_segment++;
      WriteSegment(&b, at, s.prompt.data(), head, 0, prompt_seg, -1);
    }
    int64_t off = at + head;
    const int32_t last_prompt = s.prompt.back();
    auto write_response = [&](const std::vector<int32_t>& resp, const std::vector<uint8_t>& fmt,
                              uint8_t side) {
      const int32_t seg = cur.next_segment++;
      const auto rlen = static_cast<int64_t>(resp.size());
      WriteSegment(&b, off, &last_prompt, 1, head, seg, prompt_seg);
      WriteSegment(&b, off + 1, resp.data(), rlen, head + 1, seg, prompt_seg);
      // Position off + k predicts resp[k].
      for (int64_t k = 0; k < rlen; ++k) {
        b.targets[off + k] = resp[k];
        out->flags[off + k] = side | (fmt[k] ? kDpoFormatting : 0);
        out->pair_of[off + k] = pair;
      }
      off += rlen + 1;
    };
    write_response(s.chosen, s.chosen_formatting, kDpoChosen);
    write_response(s.rejected, s.rejected_formatting, kDpoRejected);
    ++consumed;
    placed = true;
  }
  const int64_t rows = RowsUsed(cur, placed);
  KeepRows(&b, rows);
  out->flags.resize(static_cast<size_t>(rows * T));
  out->pair_of.resize(static_cast<size_t>(rows * T));
  return consumed;
}

}  // namespace herd::train
