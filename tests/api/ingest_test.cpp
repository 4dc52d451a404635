#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "api/ingest/annotation.h"
#include "api/ingest/line_splitter.h"

namespace herd::ingest {
namespace {

using nlohmann::json;

std::vector<std::pair<uint64_t, std::string>> SplitAll(const std::string& data,
                                                       const std::vector<size_t>& cuts,
                                                       size_t max_line = 1 << 20) {
  LineSplitter s(max_line);
  std::vector<std::pair<uint64_t, std::string>> out;
  auto on = [&](const Line& l) {
    out.emplace_back(l.number, l.oversize ? std::string("<oversize>") : std::string(l.text));
  };
  size_t prev = 0;
  for (size_t c : cuts) {
    s.Feed(std::string_view(data).substr(prev, c - prev), on);
    prev = c;
  }
  s.Feed(std::string_view(data).substr(prev), on);
  s.Finish(on);
  return out;
}

TEST(LineSplitter, LinesSpanningChunksCrLfAndNoFinalNewline) {
  const std::string data = "first\r\nsecond line\n\nlast";
  using V = std::vector<std::pair<uint64_t, std::string>>;
  const V want = {{1, "first"}, {2, "second line"}, {3, ""}, {4, "last"}};
  EXPECT_EQ(SplitAll(data, {}), want);
  EXPECT_EQ(SplitAll(data, {3, 6, 7, 12, 20}), want);
  std::vector<size_t> every;
  for (size_t i = 1; i < data.size(); ++i) every.push_back(i);
  EXPECT_EQ(SplitAll(data, every), want);
  EXPECT_EQ(SplitAll("a\n", {}), (V{{1, "a"}}));  // no phantom empty last line
  EXPECT_EQ(SplitAll("", {}), V{});
}

TEST(LineSplitter, OversizeLinesAreReportedOnceAndSkipped) {
  const std::string data = "ok\n" + std::string(50, 'x') + "\nfine\n" + std::string(11, 'y');
  using V = std::vector<std::pair<uint64_t, std::string>>;
  const V want = {{1, "ok"}, {2, "<oversize>"}, {3, "fine"}, {4, "<oversize>"}};
  EXPECT_EQ(SplitAll(data, {}, 10), want);
  EXPECT_EQ(SplitAll(data, {5, 20, 30, 55, 58}, 10), want);
  // Exactly the limit is fine.
  EXPECT_EQ(SplitAll(std::string(10, 'z') + "\n", {4}, 10), (V{{1, std::string(10, 'z')}}));
}

IngestOptions Opts() {
  IngestOptions o;
  o.default_strength = Strength::kSlightlyBetter;
  return o;
}

Annotation MustParse(const json& j) {
  auto a = ParseAnnotationLine(j.dump(), 1, Opts());
  EXPECT_TRUE(a.ok()) << a.status().ToString() << " for " << j.dump();
  return a.ok() ? std::move(a).value() : Annotation();
}

std::string ErrorOf(const std::string& line) {
  auto a = ParseAnnotationLine(line, 1, Opts());
  EXPECT_FALSE(a.ok()) << line;
  return a.ok() ? std::string() : a.status().message();
}

TEST(Annotation, Pairwise) {
  Annotation a = MustParse({{"id", "p1"},
                            {"prompt", "Write a haiku"},
                            {"chosen", "good"},
                            {"rejected", "bad"},
                            {"strength", "significantly_better"},
                            {"annotator", "ann-7"}});
  EXPECT_EQ(a.format, AnnotationFormat::kPairwise);
  EXPECT_EQ(a.id, "p1");
  EXPECT_TRUE(a.id_from_client);
  EXPECT_EQ(a.prompt, (std::vector<Message>{{"user", "Write a haiku"}}));
  EXPECT_EQ(a.responses, (std::vector<std::string>{"good", "bad"}));
  EXPECT_EQ(a.strength, Strength::kSignificantlyBetter);
  EXPECT_FALSE(a.strength_defaulted);
  EXPECT_FALSE(a.edited);
  EXPECT_EQ(a.annotator, "ann-7");
}

TEST(Annotation, PairwiseWithEditAndDefaultStrengthAndMessages) {
  Annotation a = MustParse({{"prompt", json::array({{{"role", "system"}, {"content", "be brief"}},
                                                    {{"role", "user"}, {"content", "hi"}}})},
                            {"chosen", "hello"},
                            {"rejected", "go away"},
                            {"edited", "Hello!"}});
  EXPECT_EQ(a.prompt.size(), 2u);
  EXPECT_EQ(a.prompt[0], (Message{"system", "be brief"}));
  EXPECT_TRUE(a.edited);
  EXPECT_EQ(a.responses, (std::vector<std::string>{"Hello!", "hello", "go away"}));
  EXPECT_EQ(a.strength, Strength::kSlightlyBetter);  // the run's default
  EXPECT_TRUE(a.strength_defaulted);
  EXPECT_FALSE(a.id_from_client);
  EXPECT_EQ(a.id.rfind("sha256:", 0), 0u);
  EXPECT_EQ(a.id.size(), 7u + 64u);
}

TEST(Annotation, Ranked) {
  Annotation a = MustParse({{"id", "r1"},
                            {"prompt", "q"},
                            {"responses", {"A", "B", "C", "D"}},
                            {"ranking", {2, 0, 3, 1}},
                            {"strength", "better"}});
  EXPECT_EQ(a.format, AnnotationFormat::kRanked);
  EXPECT_EQ(a.responses, (std::vector<std::string>{"C", "A", "D", "B"}));  // best first
  EXPECT_EQ(a.strength, Strength::kBetter);
}

TEST(Annotation, HhRlhfMultiTurn) {
  const std::string hist = "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And 3+3?";
  Annotation a = MustParse({{"chosen", hist + "\n\nAssistant: 6."},
                            {"rejected", hist + "\n\nAssistant: 7, probably."}});
  EXPECT_EQ(a.format, AnnotationFormat::kHhRlhf);
  EXPECT_EQ(a.prompt, (std::vector<Message>{{"user", "What is 2+2?"},
                                            {"assistant", "4."},
                                            {"user", "And 3+3?"}}));
  EXPECT_EQ(a.responses, (std::vector<std::string>{"6.", "7, probably."}));
  EXPECT_TRUE(a.strength_defaulted);
}

TEST(Annotation, UltraFeedbackBinarized) {
  Annotation a = MustParse(
      {{"prompt", "Name a color"},
       {"chosen", {{{"role", "user"}, {"content", "Name a color"}},
                   {{"role", "assistant"}, {"content", "Blue."}}}},
       {"rejected", {{{"role", "user"}, {"content", "Name a color"}},
                     {{"role", "assistant"}, {"content", "Seven."}}}},
       {"score_chosen", 8.5},
       {"score_rejected", 2}});
  EXPECT_EQ(a.format, AnnotationFormat::kUltraFeedback);
  EXPECT_EQ(a.prompt, (std::vector<Message>{{"user", "Name a color"}}));
  EXPECT_EQ(a.responses, (std::vector<std::string>{"Blue.", "Seven."}));
  EXPECT_EQ(a.score_chosen, 8.5);
  EXPECT_EQ(a.score_rejected, 2.0);
}

TEST(Annotation, ContentHashIdIsStableAndContentDependent) {
  json base = {{"prompt", "p"}, {"chosen", "a"}, {"rejected", "b"}};
  json other = base;
  other["chosen"] = "a2";
  json restrength = base;
  restrength["strength"] = "better";
  EXPECT_EQ(MustParse(base).id, MustParse(base).id);
  EXPECT_NE(MustParse(base).id, MustParse(other).id);
  EXPECT_EQ(MustParse(base).id, MustParse(restrength).id);  // same comparison, same id
}

TEST(Annotation, InvalidLinesNameTheField) {
  EXPECT_NE(ErrorOf(R"({"prompt": "p", "chosen": "a", "rejected": )").find("invalid JSON"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("{\"prompt\": \"p\", \"chosen\": \"a\xC3\", \"rejected\": \"b\"}"),
            "invalid UTF-8 at byte 28 in field 'chosen'");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "chosen": "a"})"), "field 'rejected': missing");
  EXPECT_EQ(ErrorOf(R"({"prompt": 5, "chosen": "a", "rejected": "b"})"),
            "field 'prompt': must be a string or an array of messages, got number");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "chosen": "a", "rejected": "b", "strength": "meh"})"),
            "field 'strength': 'meh' is not one of significantly_better, better, "
            "slightly_better, marginally_better");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "chosen": "same", "rejected": "same"})"),
            "field 'rejected': identical to 'chosen'");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "responses": ["a", "b", "c"], "ranking": [0, 0, 1]})"),
            "field 'ranking': is not a permutation: index 0 appears twice");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "responses": ["a", "b"], "ranking": [0, 2]})"),
            "field 'ranking[1]': 2 is out of range [0, 2)");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "responses": ["a", "b"], "ranking": [0]})"),
            "field 'ranking': has 1 entries for 2 responses");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "responses": ["a"], "ranking": [0]})"),
            "field 'responses': needs at least 2 responses");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "responses": ["a", 3], "ranking": [0, 1]})"),
            "field 'responses[1]': must be a string, got number");
  EXPECT_EQ(ErrorOf(R"({"prompt": [{"role": "robot", "content": "x"}], "chosen": "a",
                        "rejected": "b"})"),
            "field 'prompt[0].role': 'robot' is not one of system, user, assistant, ipython (or tool)");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p", "chosen": 1, "rejected": "b"})"),
            "field 'chosen': must be a string or an array of messages, got number");
  EXPECT_EQ(ErrorOf(R"({"chosen": "no human turn", "rejected": "x"})"),
            "field 'chosen': an HH-RLHF transcript must start with \"\\n\\nHuman:\"");
  EXPECT_EQ(ErrorOf(R"(["not", "an", "object"])"), "a line must be a JSON object, got array");
  EXPECT_EQ(ErrorOf(R"({"prompt": )" + std::string(100000, '[')),
            "invalid JSON at byte 138: nested deeper than 128 levels");
  EXPECT_EQ(ErrorOf(R"({"prompt": "p"})"),
            "field 'chosen' missing (a record needs 'chosen' and 'rejected', or 'responses' and "
            "'ranking')");
  EXPECT_EQ(ErrorOf(R"({"id": 7, "prompt": "p", "chosen": "a", "rejected": "b"})"),
            "field 'id': must be a string, got number");
}

struct Collected {
  std::vector<Annotation> records;
  std::vector<LineError> errors;
};

Collected ReadAll(const std::string& data, const std::vector<size_t>& cuts, IngestOptions o) {
  Collected c;
  AnnotationReader r(
      o, [&](Annotation&& a) { c.records.push_back(std::move(a)); },
      [&](LineError&& e) { c.errors.push_back(std::move(e)); });
  size_t prev = 0;
  for (size_t cut : cuts) {
    r.Feed(std::string_view(data).substr(prev, cut - prev));
    prev = cut;
  }
  r.Feed(std::string_view(data).substr(prev));
  r.Finish();
  return c;
}

// A file mixing the four formats with invalid lines: exact counts.
std::string MixedFile() {
  std::vector<std::string> lines = {
      /* 1 */ R"({"id": "p1", "prompt": "a", "chosen": "x", "rejected": "y", "strength": "better"})",
      /* 2 */ R"({"id": "p2", "prompt": "b", "chosen": "x", "rejected": "y", "edited": "z"})",
      /* 3 */ R"({"id": "r1", "prompt": "c", "responses": ["1", "2", "3"], "ranking": [1, 2, 0]})",
      /* 4 */ "",
      /* 5 */ R"({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: no"})",
      /* 6 */ R"({"prompt": "d", "chosen": [{"role": "user", "content": "d"}, {"role": "assistant", "content": "ok"}], "rejected": [{"role": "user", "content": "d"}, {"role": "assistant", "content": "ko"}], "score_chosen": 9, "score_rejected": 1})",
      /* 7 */ R"({"id": "bad-json", "prompt": )",
      /* 8 */ "{\"prompt\": \"e\", \"chosen\": \"\xFF\", \"rejected\": \"y\"}",
      /* 9 */ R"({"prompt": "f", "chosen": "x"})",
      /* 10 */ R"({"prompt": "g", "chosen": "x", "rejected": "y", "strength": "much_better"})",
      /* 11 */ R"({"prompt": "h", "chosen": "x", "rejected": "x"})",
      /* 12 */ R"({"prompt": "i", "responses": ["a", "b"], "ranking": [1, 1]})",
      /* 13 */ "{\"prompt\": \"" + std::string(3000, 'L') + "\", \"chosen\": \"x\", \"rejected\": \"y\"}",
      /* 14 */ R"({"prompt": ["bad"], "chosen": "x", "rejected": "y"})",
      /* 15 */ R"({"id": "r2", "prompt": "j", "responses": ["a", "b"], "ranking": [0, 1], "strength": "marginally_better"})",
      /* 16 */ "   ",
      /* 17 */ R"({"chosen": "\n\nHuman: q\n\nAssistant: a1", "rejected": "\n\nHuman: other\n\nAssistant: a2"})",
  };
  std::string out;
  for (auto& l : lines) out += l + "\n";
  out.pop_back();  // the last line has no newline
  return out;
}

TEST(AnnotationReader, MixedFileExactCounts) {
  IngestOptions o = Opts();
  o.max_line_bytes = 2048;
  const std::string data = MixedFile();
  Collected whole = ReadAll(data, {}, o);
  // 6 valid lines (1, 2, 3, 5, 6, 15), 2 blank lines skipped, 9 invalid.
  ASSERT_EQ(whole.records.size(), 6u);
  std::vector<uint64_t> lines;
  std::vector<AnnotationFormat> formats;
  size_t pairs = 0;
  for (const auto& r : whole.records) {
    lines.push_back(r.line);
    formats.push_back(r.format);
    pairs += r.responses.size() * (r.responses.size() - 1) / 2;  // the pairs a ranking implies
  }
  EXPECT_EQ(lines, (std::vector<uint64_t>{1, 2, 3, 5, 6, 15}));
  using F = AnnotationFormat;
  EXPECT_EQ(formats, (std::vector<F>{F::kPairwise, F::kPairwise, F::kRanked, F::kHhRlhf,
                                     F::kUltraFeedback, F::kRanked}));
  EXPECT_EQ(pairs, 1u + 3u + 3u + 1u + 1u + 1u);
  std::vector<uint64_t> err_lines;
  for (const auto& e : whole.errors) err_lines.push_back(e.line);
  EXPECT_EQ(err_lines, (std::vector<uint64_t>{7, 8, 9, 10, 11, 12, 13, 14, 17}));
  ASSERT_EQ(whole.errors.size(), 9u);
  EXPECT_NE(whole.errors[1].detail.find("field 'chosen'"), std::string::npos);
  EXPECT_EQ(whole.errors[6].detail, "line longer than 2048 bytes");
  EXPECT_NE(whole.errors[8].detail.find("differs"), std::string::npos);
  EXPECT_EQ(whole.records[2].raw, R"({"id": "r1", "prompt": "c", "responses": ["1", "2", "3"], "ranking": [1, 2, 0]})");

  // Any chunking gives the same records and errors.
  std::mt19937 rng(42);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<size_t> cuts;
    size_t pos = 0;
    while (true) {
      pos += 1 + rng() % (trial < 10 ? 3 : 400);
      if (pos >= data.size()) break;
      cuts.push_back(pos);
    }
    Collected c = ReadAll(data, cuts, o);
    ASSERT_EQ(c.records.size(), whole.records.size()) << "trial " << trial;
    ASSERT_EQ(c.errors.size(), whole.errors.size()) << "trial " << trial;
    for (size_t i = 0; i < c.records.size(); ++i) {
      EXPECT_EQ(c.records[i].id, whole.records[i].id);
      EXPECT_EQ(c.records[i].responses, whole.records[i].responses);
      EXPECT_EQ(c.records[i].raw, whole.records[i].raw);
    }
    for (size_t i = 0; i < c.errors.size(); ++i) {
      EXPECT_EQ(c.errors[i].line, whole.errors[i].line);
      EXPECT_EQ(c.errors[i].detail, whole.errors[i].detail);
    }
  }
}

TEST(AnnotationReader, RandomBytesAndChunksNeverCrash) {
  // Fuzz-ish: random bytes, mutated valid lines and random chunk splits.
  // Every non-blank line must end up as exactly one record or one error.
  std::mt19937 rng(1234);
  const std::string seed = MixedFile();
  IngestOptions o;
  o.max_line_bytes = 512;
  for (int trial = 0; trial < 300; ++trial) {
    std::string data;
    if (trial % 2 == 0) {
      data.resize(rng() % 4096);
      for (auto& ch : data) {
        int r = rng() % 20;
        ch = r == 0 ? '\n' : r < 4 ? "{}[]\":,"[rng() % 7] : static_cast<char>(rng());
      }
    } else {
      data = seed;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 20); ++k) {
        data[rng() % data.size()] = static_cast<char>(rng());
      }
    }
    std::vector<size_t> cuts;
    for (size_t pos = rng() % 64; pos < data.size(); pos += 1 + rng() % 300) cuts.push_back(pos);
    Collected c = ReadAll(data, cuts, o);
    // Count the non-blank lines independently.
    size_t nonblank = 0;
    size_t start = 0;
    while (start <= data.size()) {
      size_t nl = data.find('\n', start);
      std::string line = data.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      bool oversize = line.size() > o.max_line_bytes;  // the splitter counts a trailing '\r'
      if (!line.empty() && line.back() == '\r') line.pop_back();
      bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
      if (!blank || oversize) ++nonblank;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    ASSERT_EQ(c.records.size() + c.errors.size(), nonblank) << "trial " << trial;
  }
}

TEST(Prompts, FormatsAndErrors) {
  auto p = ParsePromptLine(R"({"id": "q1", "prompt": "hello", "split": "eval"})", 3);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->id, "q1");
  EXPECT_EQ(p->split, Split::kEval);
  EXPECT_EQ(p->messages, (std::vector<Message>{{"user", "hello"}}));
  EXPECT_EQ(p->line, 3u);
  auto m = ParsePromptLine(
      R"({"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]})", 1);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->split, Split::kTrain);
  EXPECT_EQ(m->messages.size(), 2u);
  EXPECT_EQ(m->id.rfind("sha256:", 0), 0u);
  // Llama 3's ipython role is accepted, and "tool" is stored as it: the
  // worker's chat format renders both.
  auto t = ParsePromptLine(
      R"({"prompt": [{"role": "user", "content": "u"}, {"role": "tool", "content": "42"},
                     {"role": "ipython", "content": "43"}]})", 1);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->messages, (std::vector<Message>{{"user", "u"}, {"ipython", "42"}, {"ipython", "43"}}));
  EXPECT_EQ(ParsePromptLine(R"({"prompt": "x", "split": "test"})", 1).status().message(),
            "field 'split': 'test' is not one of train, eval");
  EXPECT_EQ(ParsePromptLine(R"({"split": "train"})", 1).status().message(),
            "field 'prompt': missing");
  EXPECT_EQ(ParsePromptLine(R"({"prompt": ""})", 1).status().message(),
            "field 'prompt': must not be empty");

  std::vector<PromptRecord> recs;
  std::vector<LineError> errs;
  PromptReader r([&](PromptRecord&& x) { recs.push_back(std::move(x)); },
                 [&](LineError&& e) { errs.push_back(std::move(e)); });
  r.Feed("{\"prompt\": \"a\"}\n{\"prom");
  r.Feed("pt\": \"b\", \"split\": \"eval\"}\n\nnot json\n{\"prompt\": \"c\"}");
  r.Finish();
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].split, Split::kEval);
  EXPECT_EQ(recs[2].line, 5u);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].line, 4u);
}

TEST(Strength, NamesRoundTrip) {
  for (Strength s : {Strength::kSignificantlyBetter, Strength::kBetter, Strength::kSlightlyBetter,
                     Strength::kMarginallyBetter}) {
    EXPECT_EQ(ParseStrength(StrengthName(s)), s);
  }
  EXPECT_FALSE(ParseStrength("Better").has_value());
}

}  // namespace
}  // namespace herd::ingest
