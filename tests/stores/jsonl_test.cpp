// JSONL export/import: round trips through text, the SFT set of a round,
// and line-numbered errors on bad input.
#include "stores/jsonl.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "stores/store.h"
#include "tests/stores/test_util.h"

namespace herd::stores {
namespace {

using testing::OpenAt;

TEST(JsonlTest, PairsSamplesPromptsAnnotationsRoundTripThroughJsonl) {
  testing::TempDir a, b;
  auto src = OpenAt(a.path());
  auto dst = OpenAt(b.path());
  ASSERT_TRUE(src && dst);
  WriteTxn t = src->NewTxn();
  for (int i = 0; i < 30; ++i) {
    Pair p;
    p.run_id = "run-1";
    p.round = uint32_t(i % 3);
    p.id = "pair-" + std::to_string(i);
    p.prompt = {{"system", "s"}, {"user", "q\"uote\n" + std::to_string(i)}};
    p.chosen = "c";
    p.rejected = "r";
    p.strength = "better";
    if (i % 2) p.edited = "e";
    p.source = "upload";
    p.annotation_id = "a" + std::to_string(i);
    p.annotator = "bob";
    p.created_ms = i;
    t.PutPair(p);
    Sample s;
    s.run_id = "run-1";
    s.round = 1;
    s.prompt_id = "p" + std::to_string(i);
    s.idx = uint32_t(i);
    s.tokens = {1, -2, 2147483647};
    s.text = "ü text";
    s.logprob = -1.5;
    if (i % 2) s.rm_score = 0.125 * i;
    s.temperature = 0.7f;
    s.seed = 1ull << 60;
    s.selected = i % 3 == 0;
    t.PutSample(s);
    t.PutPrompt(Prompt{"run-1", "p" + std::to_string(i), {{"user", "hi"}}, "train", "src", 5});
    Annotation an;
    an.run_id = "run-1";
    an.id = "a" + std::to_string(i);
    an.raw = "{\"x\":1}";
    an.responses = {"x", "y"};
    an.prompt = {{"user", "hi"}};
    if (i == 3) an.edited = "z";
    an.source_line = uint64_t(i + 1);
    t.PutAnnotation(an);
  }
  ASSERT_TRUE(src->Commit(t).ok());

  auto roundtrip = [&](auto exp, auto imp, auto each) {
    std::stringstream ss;
    auto st = exp(ss);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(st->lines, 30u);
    EXPECT_EQ(st->bytes, ss.str().size());
    ImportStats is;
    Status s = imp(ss, &is);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(is.records, 30u);
    each();
  };
  ImportOptions opt;
  opt.batch_records = 7;  // several batches plus a partial one
  roundtrip([&](std::ostream& o) { return ExportPairsJsonl(*src, "run-1", std::nullopt, o); },
            [&](std::istream& i, ImportStats* s) { return ImportPairsJsonl(*dst, i, opt, s); },
            [&] {
              ASSERT_TRUE(src->ForEachPair("run-1", std::nullopt, [&](const Pair& p) {
                EXPECT_EQ(*dst->GetPair("run-1", p.round, p.id), p);
                return true;
              }).ok());
            });
  roundtrip([&](std::ostream& o) { return ExportSamplesJsonl(*src, "run-1", std::nullopt, o); },
            [&](std::istream& i, ImportStats* s) { return ImportSamplesJsonl(*dst, i, opt, s); },
            [&] {
              ASSERT_TRUE(src->ForEachSample("run-1", std::nullopt, [&](const Sample& s) {
                EXPECT_EQ(*dst->GetSample("run-1", s.round, s.prompt_id, s.idx), s);
                return true;
              }).ok());
            });
  roundtrip([&](std::ostream& o) { return ExportPromptsJsonl(*src, "run-1", o); },
            [&](std::istream& i, ImportStats* s) { return ImportPromptsJsonl(*dst, i, opt, s); },
            [&] {
              ASSERT_TRUE(src->ForEachPrompt("run-1", [&](const Prompt& p) {
                EXPECT_EQ(*dst->GetPrompt("run-1", p.id), p);
                return true;
              }).ok());
            });
  roundtrip([&](std::ostream& o) { return ExportAnnotationsJsonl(*src, "run-1", o); },
            [&](std::istream& i, ImportStats* s) { return ImportAnnotationsJsonl(*dst, i, opt, s); },
            [&] {
              ASSERT_TRUE(src->ForEachAnnotation("run-1", [&](const Annotation& x) {
                EXPECT_EQ(*dst->GetAnnotation("run-1", x.id), x);
                return true;
              }).ok());
            });
  // Round filter on export.
  std::stringstream r1;
  auto st = ExportPairsJsonl(*src, "run-1", 1u, r1);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->lines, 10u);
}

TEST(JsonlTest, SftSetExportJoinsSamplesWithTheirPrompts) {
  testing::TempDir d;
  auto st = OpenAt(d.path());
  ASSERT_TRUE(st);
  WriteTxn t = st->NewTxn();
  t.PutPrompt(Prompt{"run-1", "p1", {{"system", "sys"}, {"user", "u1"}}, "train", "", 0});
  t.PutPrompt(Prompt{"run-1", "p2", {{"user", "u2"}}, "train", "", 0});
  for (const std::string p : {"p1", "p2"}) {
    for (uint32_t i = 0; i < 3; ++i) {
      Sample s;
      s.run_id = "run-1";
      s.round = 1;
      s.prompt_id = p;
      s.idx = i;
      s.text = p + "-answer-" + std::to_string(i);
      s.rm_score = double(i);
      s.policy_checkpoint_id = "ckpt-1";
      t.PutSample(s);
    }
    t.PutDatasetMember(DatasetMember{"run-1", 1, "sft", 1, p, 2});
  }
  ASSERT_TRUE(st->Commit(t).ok());
  std::stringstream out;
  auto es = ExportSftSetJsonl(*st, "run-1", 1, out);
  ASSERT_TRUE(es.ok()) << es.status().ToString();
  EXPECT_EQ(es->lines, 2u);
  std::string line;
  std::getline(out, line);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["prompt_id"], "p1");
  EXPECT_EQ(j["idx"], 2);
  ASSERT_EQ(j["messages"].size(), 3u);
  EXPECT_EQ(j["messages"][0]["content"], "sys");
  EXPECT_EQ(j["messages"][2]["role"], "assistant");
  EXPECT_EQ(j["messages"][2]["content"], "p1-answer-2");
  EXPECT_EQ(j["rm_score"], 2.0);
}

TEST(JsonlTest, BadLinesAreReportedWithLineAndField) {
  testing::TempDir d;
  auto st = OpenAt(d.path());
  ASSERT_TRUE(st);
  const std::string good =
      R"({"run_id":"run-1","round":1,"id":"x","prompt":[{"role":"user","content":"q"}],"chosen":"a","rejected":"b"})";
  struct Case {
    std::string line;
    std::string want;
  } cases[] = {
      {"not json", "line 2: not a JSON object"},
      {R"({"run_id":"run-1","id":"x","prompt":[],"chosen":"a"})", "field 'rejected' is missing"},
      {R"({"run_id":"run-1","id":"x","prompt":[],"chosen":5,"rejected":"b"})", "field 'chosen' must be a string"},
      {R"({"run_id":"run-1","id":"x","prompt":[{"role":1}],"chosen":"a","rejected":"b"})", "field 'prompt[0]'"},
      {R"({"run_id":"run-1","round":-1,"id":"x","prompt":[],"chosen":"a","rejected":"b"})", "field 'round'"},
      {R"({"run_id":"run-1","id":"","prompt":[],"chosen":"a","rejected":"b"})", "pair.id is empty"},
  };
  for (const auto& c : cases) {
    std::stringstream in(good + "\n" + c.line + "\n" + good + "\n");
    ImportStats is;
    ImportOptions opt;
    opt.batch_records = 1;
    Status s = ImportPairsJsonl(*st, in, opt, &is);
    ASSERT_TRUE(s.IsInvalidArgument()) << c.line;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("line 2"), std::string::npos) << s.message();
    EXPECT_EQ(is.records, 1u) << "the batch before the bad line stays committed";
  }
  // Sample tokens out of int32 range.
  std::stringstream in(R"({"run_id":"r","prompt_id":"p","idx":0,"tokens":[1,4294967296]})");
  Status s = ImportSamplesJsonl(*st, in, {}, nullptr);
  EXPECT_NE(s.message().find("tokens[1]"), std::string::npos) << s.message();
  // Overlong line.
  ImportOptions small;
  small.max_line_bytes = 10;
  std::stringstream longin(good + "\n");
  EXPECT_TRUE(ImportPairsJsonl(*st, longin, small, nullptr).IsInvalidArgument());
}

}  // namespace
}  // namespace herd::stores
