#include "workers/train/row_packing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

namespace herd::train {
namespace {

using model::PackedBatch;

// The attention rule of packed_batch.h, written out again: may i see j?
bool Sees(const PackedBatch& b, int64_t i, int64_t j) {
  const int64_t r = i / b.T;
  if (j / b.T != r || j > i || b.segments[j] < 0 || b.segments[i] < 0) return false;
  return b.segments[j] == b.segments[i] || b.segments[j] == b.parents[i];
}

// What a causal transformer's output at i is a function of: its own (position,
// token) and the ordered list of (position, token) it attends to, each of
// which recursively has the same property. Two positions with equal
// Context() at every visible key compute equal hidden states, whatever the
// weights. Returned as the key list, in order.
std::vector<std::pair<int32_t, int32_t>> Context(const PackedBatch& b, int64_t i) {
  std::vector<std::pair<int32_t, int32_t>> c;
  for (int64_t j = (i / b.T) * b.T; j <= i; ++j) {
    if (Sees(b, i, j)) c.emplace_back(b.positions[j], b.tokens[j]);
  }
  return c;
}

// Recursive equality of what i (in a) and k (in b) compute.
bool SameComputation(const PackedBatch& a, int64_t i, const PackedBatch& b, int64_t k) {
  if (a.positions[i] != b.positions[k] || a.tokens[i] != b.tokens[k]) return false;
  if (Context(a, i) != Context(b, k)) return false;
  std::vector<int64_t> ja, jb;
  for (int64_t j = (i / a.T) * a.T; j < i; ++j)
    if (Sees(a, i, j)) ja.push_back(j);
  for (int64_t j = (k / b.T) * b.T; j < k; ++j)
    if (Sees(b, k, j)) jb.push_back(j);
  if (ja.size() != jb.size()) return false;
  for (size_t n = 0; n < ja.size(); ++n)
    if (!SameComputation(a, ja[n], b, jb[n])) return false;
  return true;
}

SftExample Conv(std::vector<int32_t> t, std::vector<uint8_t> train) {
  return {std::move(t), std::move(train)};
}

TEST(PackSft, SegmentsPositionsTargetsAndWeights) {
  std::vector<SftExample> ex = {Conv({1, 2, 3, 4}, {0, 0, 1, 1}), Conv({1, 5, 6}, {0, 1, 1}),
                                Conv({1, 7, 8, 9, 10}, {0, 0, 0, 1, 1})};
  PackedBatch b;
  auto n = PackSft(ex, 2, 8, {}, &b);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n.value(), 3);
  // Row 0: conv0 (4) + conv1 (3) + 1 pad; row 1: conv2 (5) + 3 pad.
  EXPECT_EQ(std::vector<int32_t>(b.segments.begin(), b.segments.begin() + 8),
            (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, -1}));
  EXPECT_EQ(std::vector<int32_t>(b.positions.begin(), b.positions.begin() + 8),
            (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 0}));
  // Targets are the next token within a conversation, never across.
  EXPECT_EQ(std::vector<int32_t>(b.targets.begin(), b.targets.begin() + 8),
            (std::vector<int32_t>{2, 3, 4, -1, 5, 6, -1, -1}));
  // Weight 1 where the predicted token is trained.
  EXPECT_EQ(std::vector<float>(b.loss_weights.begin(), b.loss_weights.begin() + 8),
            (std::vector<float>{0, 1, 1, 0, 1, 1, 0, 0}));
  EXPECT_EQ(b.segments[8], 0);
  EXPECT_EQ(b.positions[12], 4);
  EXPECT_EQ(b.targets[11], 10);
  EXPECT_EQ(b.segments[13], -1);
  for (int32_t p : b.parents) EXPECT_EQ(p, -1);
}

TEST(PackSft, KeepsOnlyTheRowsItUsed) {
  std::vector<SftExample> ex = {Conv({1, 2, 3}, {0, 1, 1}), Conv({1, 2, 3}, {0, 1, 1})};
  PackedBatch b;
  ASSERT_EQ(PackSft(ex, 4, 4, {}, &b).value(), 2);
  EXPECT_EQ(b.B, 2);  // two rows of 4 used out of 4 allowed
  EXPECT_EQ(b.tokens.size(), 8u);
  EXPECT_EQ(b.loss_weights.size(), 8u);
  ASSERT_EQ(PackSft({}, 4, 4, {}, &b).value(), 0);
  EXPECT_EQ(b.B, 1);  // nothing packed: one row of padding
  EXPECT_EQ(b.segments, std::vector<int32_t>(4, -1));
  DpoBatch d;
  std::vector<DpoSample> one = {{"x", {1, 2}, {5}, {0}, {6}, {0}}};
  ASSERT_EQ(PackDpo(one, 3, 8, &d).value(), 1);
  EXPECT_EQ(d.batch.B, 1);
  EXPECT_EQ(d.flags.size(), 8u);
  EXPECT_EQ(d.pair_of.size(), 8u);
}

TEST(PackSft, StopsWhenRowsAreFullAndChecksLengths) {
  std::vector<SftExample> ex = {Conv({1, 2, 3}, {0, 1, 1}), Conv({1, 2, 3}, {0, 1, 1}),
                                Conv({1, 2, 3}, {0, 1, 1})};
  PackedBatch b;
  EXPECT_EQ(PackSft(ex, 1, 7, {}, &b).value(), 2);  // the third does not fit in one row
  std::vector<SftExample> longer = {Conv({1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 1, 1, 1, 1, 1, 1, 1, 1})};
  auto r = PackSft(longer, 1, 7, {}, &b);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("SFT example 0"), std::string::npos);
  SftPackOptions cut;
  cut.truncate = true;
  ASSERT_EQ(PackSft(longer, 1, 7, cut, &b).value(), 1);
  EXPECT_EQ(b.targets[5], 7);
  EXPECT_EQ(b.targets[6], -1);
  std::vector<SftExample> bad = {Conv({1, 2, 3}, {0, 1})};
  EXPECT_FALSE(PackSft(bad, 1, 7, {}, &b).ok());
}

RankedSample Ranked(std::string id, std::vector<int32_t> prompt,
                    std::vector<std::vector<int32_t>> responses) {
  RankedSample s;
  s.id = std::move(id);
  s.prompt = std::move(prompt);
  s.responses = std::move(responses);
  s.strength = Strength::kSignificantlyBetter;
  return s;
}

TEST(PackRm, PromptThenChildResponsesWithRewardIndices) {
  std::vector<RankedSample> s = {Ranked("a", {1, 2, 3}, {{10, 11}, {20, 21, 22}, {30}}),
                                 Ranked("b", {1, 4}, {{40, 41}, {50}})};
  RmBatch rb;
  auto n = PackRm(s, {}, 1, 16, 42, &rb);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(n.value(), 2);
  const auto& b = rb.batch;
  // Sample a: 3 + 2 + 3 + 1 = 9 tokens, b: 2 + 2 + 1 = 5 tokens; row of 16.
  ASSERT_EQ(rb.reward_index.size(), 5u);
  ASSERT_EQ(rb.pairs.size(), 4u);  // 3 + 1
  for (size_t r = 0; r < rb.reward_index.size(); ++r) {
    const int64_t i = rb.reward_index[r];
    const auto& sample = s[rb.response_sample[r]];
    const auto& resp = sample.responses[rb.response_rank[r]];
    // The reward token is the response's last token, at position
    // |prompt| + |response| − 1, in a child segment of the prompt's.
    EXPECT_EQ(b.tokens[i], resp.back());
    EXPECT_EQ(b.positions[i], static_cast<int32_t>(sample.prompt.size() + resp.size() - 1));
    EXPECT_GE(b.parents[i], 0);
    EXPECT_NE(b.segments[i], b.parents[i]);
    // It sees the whole prompt and its own response only: |prompt| + |resp| keys.
    EXPECT_EQ(Context(b, i).size(), sample.prompt.size() + resp.size());
  }
  for (const auto& p : rb.pairs) {
    EXPECT_EQ(rb.response_sample[p.chosen], rb.response_sample[p.rejected]);
    EXPECT_LT(rb.response_rank[p.chosen], rb.response_rank[p.rejected]);  // better ranked first
  }
  EXPECT_EQ(b.segments[14], -1);
  for (int32_t t : b.targets) EXPECT_EQ(t, -1);
}

TEST(PackRm, SharedPromptComputesWhatEachResponseAloneComputes) {
  std::vector<RankedSample> s = {Ranked("a", {1, 2, 3}, {{10, 11}, {20, 21, 22}, {30}})};
  RmBatch shared;
  ASSERT_TRUE(PackRm(s, {}, 1, 12, 7, &shared).ok());
  for (size_t r = 0; r < shared.reward_index.size(); ++r) {
    // The same response in a row of its own: prompt + response as one segment.
    const auto& resp = s[0].responses[shared.response_rank[r]];
    PackedBatch alone;
    std::vector<int32_t> toks = s[0].prompt;
    toks.insert(toks.end(), resp.begin(), resp.end());
    std::vector<SftExample> one = {{toks, std::vector<uint8_t>(toks.size(), 0)}};
    ASSERT_TRUE(PackSft(one, 1, 12, {}, &alone).ok());
    EXPECT_TRUE(SameComputation(shared.batch, shared.reward_index[r], alone,
                                static_cast<int64_t>(toks.size()) - 1))
        << "response rank " << shared.response_rank[r];
  }
}

TEST(PackRm, ShuffleIsSeededPerSampleAndFiltersApply) {
  std::vector<RankedSample> s;
  for (int k = 0; k < 12; ++k) {
    std::string id = "s";
    id += std::to_string(k);  // (not "s" + to_string: GCC 12 -Wrestrict false positive)
    s.push_back(Ranked(id, {1, 2}, {{10 + k}, {20 + k}, {30 + k}}));
  }
  RmBatch a, b, c;
  ASSERT_TRUE(PackRm(s, {}, 4, 16, 1, &a).ok());
  ASSERT_TRUE(PackRm(s, {}, 4, 16, 1, &b).ok());
  ASSERT_TRUE(PackRm(s, {}, 4, 16, 2, &c).ok());
  EXPECT_EQ(a.response_rank, b.response_rank);  // same seed, same order
  EXPECT_NE(a.response_rank, c.response_rank);  // another seed reorders
  // The best response is not always first in the row.
  std::set<int32_t> first_ranks;
  for (size_t r = 0; r < a.response_rank.size(); r += 3) first_ranks.insert(a.response_rank[r]);
  EXPECT_GT(first_ranks.size(), 1u);
  // The order of a sample does not depend on its neighbours.
  RmBatch solo;
  std::vector<RankedSample> just5 = {s[5]};
  ASSERT_TRUE(PackRm(just5, {}, 1, 16, 1, &solo).ok());
  EXPECT_EQ(solo.response_rank,
            std::vector<int32_t>(a.response_rank.begin() + 15, a.response_rank.begin() + 18));
  // Filtered samples are consumed but not packed.
  s[0].strength = Strength::kMarginallyBetter;
  RmBatch f;
  auto n = PackRm(std::span<const RankedSample>(s.data(), 2), {}, 1, 16, 1, &f);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 2);
  EXPECT_EQ(f.reward_index.size(), 3u);
  EXPECT_EQ(f.response_sample[0], 1);
  // Too long for a row: error naming the sample.
  auto r = PackRm(s, {}, 1, 4, 1, &f);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'s1'"), std::string::npos) << r.status().message();
}

DpoSample Dpo(std::string id, std::vector<int32_t> p, std::vector<int32_t> c,
              std::vector<uint8_t> cf, std::vector<int32_t> r, std::vector<uint8_t> rf) {
  return {std::move(id), std::move(p), std::move(c), std::move(cf), std::move(r), std::move(rf)};
}

TEST(PackDpo, LayoutAndFlags) {
  std::vector<DpoSample> s = {Dpo("x", {1, 2, 3}, {5, 6, 99}, {0, 0, 1}, {7, 99}, {0, 1})};
  DpoBatch d;
  ASSERT_EQ(PackDpo(s, 1, 12, &d).value(), 1);
  const auto& b = d.batch;
  // P P | p' C C C | p' R R   (p' = 3, the last prompt token)
  EXPECT_EQ(std::vector<int32_t>(b.tokens.begin(), b.tokens.begin() + 9),
            (std::vector<int32_t>{1, 2, 3, 5, 6, 99, 3, 7, 99}));
  EXPECT_EQ(std::vector<int32_t>(b.positions.begin(), b.positions.begin() + 9),
            (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 2, 3, 4}));
  EXPECT_EQ(std::vector<int32_t>(b.segments.begin(), b.segments.begin() + 10),
            (std::vector<int32_t>{0, 0, 1, 1, 1, 1, 2, 2, 2, -1}));
  EXPECT_EQ(std::vector<int32_t>(b.parents.begin(), b.parents.begin() + 9),
            (std::vector<int32_t>{-1, -1, 0, 0, 0, 0, 0, 0, 0}));
  // Each response position predicts the next response token.
  EXPECT_EQ(std::vector<int32_t>(b.targets.begin(), b.targets.begin() + 9),
            (std::vector<int32_t>{-1, -1, 5, 6, 99, -1, 7, 99, -1}));
  EXPECT_EQ(std::vector<uint8_t>(d.flags.begin(), d.flags.begin() + 9),
            (std::vector<uint8_t>{0, 0, kDpoChosen, kDpoChosen, kDpoChosen | kDpoFormatting, 0,
                                  kDpoRejected, kDpoRejected | kDpoFormatting, 0}));
  EXPECT_EQ(d.pair_of[2], 0);
  EXPECT_EQ(d.pair_of[0], -1);
  EXPECT_EQ(d.pair_ids, std::vector<std::string>{"x"});
  for (float w : b.loss_weights) EXPECT_EQ(w, 0.0f);
}

// The requirement for the first response token: in the shared row
// every response prediction computes exactly what it computes when the
// prompt and that response are a row of their own.
TEST(PackDpo, SharedPromptComputesWhatEachResponseAloneComputes) {
  std::vector<DpoSample> s = {
      Dpo("x", {1, 2, 3, 4}, {5, 6, 99}, {0, 0, 1}, {7, 8, 9, 99}, {0, 0, 0, 1}),
      Dpo("y", {1}, {11, 99}, {0, 1}, {12, 99}, {0, 1})};
  DpoBatch d;
  ASSERT_EQ(PackDpo(s, 1, 24, &d).value(), 2);
  for (size_t p = 0; p < s.size(); ++p) {
    for (int side = 0; side < 2; ++side) {
      const auto& resp = side == 0 ? s[p].chosen : s[p].rejected;
      std::vector<int32_t> toks = s[p].prompt;
      toks.insert(toks.end(), resp.begin(), resp.end());
      PackedBatch alone;
      std::vector<SftExample> one = {{toks, std::vector<uint8_t>(toks.size(), 1)}};
      ASSERT_TRUE(PackSft(one, 1, 24, {}, &alone).ok());
      // Walk the shared row's predictions of this response, in order.
      const uint8_t want = side == 0 ? kDpoChosen : kDpoRejected;
      size_t k = 0;
      for (int64_t i = 0; i < d.batch.size(); ++i) {
        if (d.pair_of[i] != static_cast<int32_t>(p) || !(d.flags[i] & want)) continue;
        // In the alone row, resp[k] is predicted at |prompt| − 1 + k.
        const int64_t j = static_cast<int64_t>(s[p].prompt.size()) - 1 + static_cast<int64_t>(k);
        EXPECT_EQ(d.batch.targets[i], alone.targets[j]);
        EXPECT_EQ(d.batch.targets[i], resp[k]);
        EXPECT_TRUE(SameComputation(d.batch, i, alone, j))
            << "pair " << p << " side " << side << " k " << k;
        ++k;
      }
      EXPECT_EQ(k, resp.size());
    }
  }
}

TEST(PackDpo, ErrorsNameThePair) {
  DpoBatch d;
  std::vector<DpoSample> bad = {Dpo("q1", {1, 2}, {5}, {0, 0}, {6}, {0})};
  auto r = PackDpo(bad, 1, 16, &d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'q1'"), std::string::npos);
  std::vector<DpoSample> empty = {Dpo("q2", {1, 2}, {}, {}, {6}, {0})};
  EXPECT_FALSE(PackDpo(empty, 1, 16, &d).ok());
  std::vector<DpoSample> longer = {Dpo("q3", {1, 2, 3}, {5, 6}, {0, 0}, {6, 7}, {0, 0})};
  EXPECT_EQ(DpoRowLength(longer[0]), 8);
  EXPECT_FALSE(PackDpo(longer, 1, 7, &d).ok());
  EXPECT_TRUE(PackDpo(longer, 1, 8, &d).ok());
}

}  // namespace
}  // namespace herd::train
