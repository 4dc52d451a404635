#include <gtest/gtest.h>

#include <set>

#include "api/wire/http.h"
#include "api/wire/json_util.h"
#include "api/wire/problem.h"
#include "api/wire/utf8.h"

namespace herd::api {
namespace {

using namespace std::string_literals;

TEST(Utf8, AcceptsValidSequences) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));            // é, 2 bytes
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));           // €, 3 bytes
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));       // U+1F600, 4 bytes
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));       // U+10FFFF, the last code point
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));           // U+D7FF, just below the surrogates
}

TEST(Utf8, RejectsInvalidSequencesAtTheirOffset) {
  EXPECT_EQ(FindInvalidUtf8("ab\xFF"), 2u);                 // never valid
  EXPECT_EQ(FindInvalidUtf8("a\x80"), 1u);                  // lone continuation
  EXPECT_EQ(FindInvalidUtf8("\xC0\x80"), 0u);               // overlong NUL
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\xAF"), 0u);           // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("xy\xED\xA0\x80"), 2u);         // surrogate U+D800
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);       // U+110000
  EXPECT_EQ(FindInvalidUtf8("ok\xE2\x82"), 2u);             // truncated
  EXPECT_EQ(FindInvalidUtf8(std::string_view("\xC3\xA9\xC3(", 4)), 2u);       // bad continuation
}

TEST(ParseJson, ValidTextParses) {
  auto j = ParseJson(R"({"a": [1, "x"], "b": {"c": null}})");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["a"][1], "x");
}

TEST(ParseJson, BadUtf8NamesTheField) {
  auto j = ParseJson("{\"id\": \"a\", \"chosen\": \"ab\xFF\"}");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message(), "invalid UTF-8 at byte 25 in field 'chosen'");

  auto k = ParseJson("{\"prompt\": [{\"role\": \"user\", \"content\": \"x\xC0\"}]}");
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("in field 'prompt[0].content'"), std::string::npos)
      << k.status().message();
}

TEST(ParseJson, SyntaxErrorNamesTheFieldAndByte) {
  auto j = ParseJson(R"({"a": 1, "b": [true, tru]})");
  ASSERT_FALSE(j.ok());
  const std::string& m = j.status().message();
  EXPECT_EQ(m.rfind("invalid JSON at byte ", 0), 0u) << m;
  EXPECT_NE(m.find("in field 'b[1]'"), std::string::npos) << m;
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_FALSE(ParseJson("{} trailing").ok());
}

TEST(ParseJson, DeepNestingIsAnErrorNotAStackOverflow) {
  std::string deep(1 << 20, '[');  // a 1 MiB line of '[' used to crash nlohmann
  auto j = ParseJson(deep);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message(), "invalid JSON at byte 128: nested deeper than 128 levels");
  std::string ok = std::string(128, '[') + std::string(128, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
  // Brackets inside strings (with escaped quotes) do not count.
  std::string in_string = "[\"" + std::string(500, '[') + "\\\"\"]";
  EXPECT_TRUE(ParseJson(in_string).ok()) << ParseJson(in_string).status().ToString();
}

TEST(DumpJson, ReplacesInvalidUtf8InsteadOfThrowing) {
  nlohmann::json j = {{"detail", "bad \xFF byte"}};
  std::string s = DumpJson(j);
  EXPECT_TRUE(IsValidUtf8(s));
  EXPECT_NE(s.find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
}

TEST(ParseTarget, SplitsPathAndDecodesQuery) {
  std::string path;
  std::vector<std::pair<std::string, std::string>> q;
  ASSERT_TRUE(ParseTarget("/v1/runs?page_size=10&state=a%20b&x=1+2&flag", &path, &q).ok());
  EXPECT_EQ(path, "/v1/runs");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"page_size", "10"}));
  EXPECT_EQ(q[1].second, "a b");
  EXPECT_EQ(q[2].second, "1 2");
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_FALSE(ParseTarget("v1/runs", &path, &q).ok());
  EXPECT_FALSE(ParseTarget("/x?a=%zz", &path, &q).ok());
  EXPECT_FALSE(ParseTarget("/x?a=%4", &path, &q).ok());
}

TEST(PercentCoding, RoundTrips) {
  const std::string s = "run 1/ä:start?&=";
  auto d = PercentDecode(PercentEncode(s), false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, s);
  EXPECT_EQ(PercentEncode("a b"), "a%20b");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
}

TEST(Headers, CaseInsensitiveGetAndSet) {
  Headers h;
  h.Add("Content-Type", "a");
  h.Add("X-Two", "1");
  h.Add("x-two", "2");
  EXPECT_EQ(*h.Get("content-type"), "a");
  EXPECT_EQ(*h.Get("X-TWO"), "1");
  h.Set("X-Two", "3");
  EXPECT_EQ(*h.Get("x-two"), "3");
  EXPECT_EQ(h.fields().size(), 2u);
  EXPECT_FALSE(h.Get("missing").has_value());
}

TEST(Roles, AdminSatisfiesAllViewerIsSatisfiedByAll) {
  for (Role have : {Role::kViewer, Role::kWorker, Role::kAnnotator, Role::kAdmin}) {
    EXPECT_TRUE(RoleSatisfies(have, Role::kViewer));
    EXPECT_TRUE(RoleSatisfies(Role::kAdmin, have));
    EXPECT_EQ(*ParseRole(RoleName(have)), have);
  }
  EXPECT_FALSE(RoleSatisfies(Role::kWorker, Role::kAnnotator));
  EXPECT_FALSE(RoleSatisfies(Role::kAnnotator, Role::kWorker));
  EXPECT_FALSE(RoleSatisfies(Role::kViewer, Role::kWorker));
  EXPECT_FALSE(RoleSatisfies(Role::kAnnotator, Role::kAdmin));
  EXPECT_FALSE(ParseRole("root").ok());
}

TEST(Problem, BodyHasTheRfc9457Members) {
  Response r = MakeProblem(ProblemType::kPayloadTooLarge, "too big", {{"", 3, "line 3 bad"}},
                           "/v1/x");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["type"], "urn:herd:problem:payload-too-large");
  EXPECT_EQ(j["title"], "Payload too large");
  EXPECT_EQ(j["status"], 413);
  EXPECT_EQ(j["detail"], "too big");
  EXPECT_EQ(j["instance"], "/v1/x");
  EXPECT_EQ(j["errors"][0]["line"], 3);
  EXPECT_EQ(j["errors"][0]["detail"], "line 3 bad");

  ParsedProblem p = ParseProblem(r.body);
  EXPECT_EQ(p.type, "urn:herd:problem:payload-too-large");
  EXPECT_EQ(p.status, 413);
  EXPECT_EQ(p.detail, "too big");
  EXPECT_EQ(ParseProblem("not json").detail, "not json");
  EXPECT_EQ(ParseProblem(R"({"type": 5})").type, "");
}

TEST(Problem, EveryTypeHasAStableDistinctUri) {
  std::set<std::string> uris;
  for (int t = 0; t <= static_cast<int>(ProblemType::kUnavailable); ++t) {
    auto type = static_cast<ProblemType>(t);
    std::string uri = ProblemTypeUri(type);
    EXPECT_EQ(uri.rfind("urn:herd:problem:", 0), 0u);
    EXPECT_TRUE(uris.insert(uri).second) << uri;
    int st = GetProblemInfo(type).status;
    EXPECT_GE(st, 400);
    EXPECT_LT(st, 600);
  }
}

TEST(Problem, StatusCodesMapToHttp) {
  EXPECT_EQ(ProblemFromStatus(Status::InvalidArgument("x")).status, 400);
  EXPECT_EQ(ProblemFromStatus(Status::NotFound("x")).status, 404);
  EXPECT_EQ(ProblemFromStatus(Status::AlreadyExists("x")).status, 409);
  EXPECT_EQ(ProblemFromStatus(Status::FailedPrecondition("x")).status, 409);
  EXPECT_EQ(ProblemFromStatus(Status::ResourceExhausted("x")).status, 429);
  EXPECT_EQ(ProblemFromStatus(Status::Unavailable("x")).status, 503);
  EXPECT_EQ(ProblemFromStatus(Status::Internal("x")).status, 500);
  EXPECT_EQ(ProblemFromStatus(Status::DataLoss("x")).status, 500);
}

}  // namespace
}  // namespace herd::api
