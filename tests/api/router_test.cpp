#include "api/server/router.h"

#include <gtest/gtest.h>

namespace herd::api {
namespace {

Handler Named(std::string name) {
  return [name](const Request&) { return Response::Text(200, name); };
}

std::string Call(const RouteMatch& m) {
  if (m.route == nullptr) return "status " + std::to_string(m.status);
  return m.route->handler(Request()).body;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(r_.Add("GET", "/v1/runs", Named("list")).ok());
    ASSERT_TRUE(r_.Add("POST", "/v1/runs", Named("create")).ok());
    ASSERT_TRUE(r_.Add("GET", "/v1/runs/{run}", Named("get")).ok());
    ASSERT_TRUE(r_.Add("POST", "/v1/runs/{run}:start", Named("start")).ok());
    ASSERT_TRUE(r_.Add("POST", "/v1/runs/{run}:cancel", Named("cancel")).ok());
    ASSERT_TRUE(r_.Add("GET", "/v1/runs/{run}/rounds/{n}", Named("round")).ok());
    ASSERT_TRUE(r_.Add("POST", "/v1/runs/{run}/rounds/{n}/stages/{stage}:retry", Named("retry")).ok());
    ASSERT_TRUE(r_.Add("GET", "/v1/runs/special", Named("special")).ok());
    ASSERT_TRUE(r_.Add("POST", "/v1/runs:batchGet", Named("batch")).ok());
  }
  Router r_;
};

TEST_F(RouterTest, LiteralsAndParameters) {
  EXPECT_EQ(Call(r_.Match("GET", "/v1/runs")), "list");
  EXPECT_EQ(Call(r_.Match("POST", "/v1/runs")), "create");
  auto m = r_.Match("GET", "/v1/runs/r1");
  EXPECT_EQ(Call(m), "get");
  EXPECT_EQ(m.params.at("run"), "r1");
  auto k = r_.Match("GET", "/v1/runs/r1/rounds/3");
  EXPECT_EQ(Call(k), "round");
  EXPECT_EQ(k.params.at("run"), "r1");
  EXPECT_EQ(k.params.at("n"), "3");
}

TEST_F(RouterTest, CustomVerbs) {
  auto m = r_.Match("POST", "/v1/runs/r1:start");
  EXPECT_EQ(Call(m), "start");
  EXPECT_EQ(m.params.at("run"), "r1");
  EXPECT_EQ(Call(r_.Match("POST", "/v1/runs/r1:cancel")), "cancel");
  auto s = r_.Match("POST", "/v1/runs/r1/rounds/2/stages/sft:retry");
  EXPECT_EQ(Call(s), "retry");
  EXPECT_EQ(s.params.at("stage"), "sft");
  EXPECT_EQ(Call(r_.Match("POST", "/v1/runs:batchGet")), "batch");
  // Unknown verb: only GET "{run}" (= "r1:pause") matches the path → 405.
  EXPECT_EQ(r_.Match("POST", "/v1/runs/r1:pause").status, 405);
  EXPECT_EQ(r_.Match("POST", "/v1/runs/r1:start/x").status, 404);
  // Empty parameter before the verb: ":start" route does not match; only
  // GET "{run}" (= ":start") does.
  auto empty = r_.Match("POST", "/v1/runs/:start");
  EXPECT_EQ(empty.status, 405);
  EXPECT_EQ(empty.allow, "GET");
}

TEST_F(RouterTest, MostSpecificPatternWins) {
  EXPECT_EQ(Call(r_.Match("GET", "/v1/runs/special")), "special");
  // "{run}:start" is more specific than "{run}", so GET on it is a 405 of the
  // verb route, not a GET of a run named "r1:start".
  auto m = r_.Match("GET", "/v1/runs/r1:start");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "POST");
}

TEST_F(RouterTest, NotFoundAndMethodNotAllowed) {
  EXPECT_EQ(r_.Match("GET", "/v2/runs").status, 404);
  EXPECT_EQ(r_.Match("GET", "/v1/runs/").status, 404);  // empty {run}
  EXPECT_EQ(r_.Match("GET", "/").status, 404);
  auto m = r_.Match("DELETE", "/v1/runs");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "GET, POST");
  EXPECT_EQ(m.route, nullptr);
}

TEST_F(RouterTest, ParametersArePercentDecodedPerSegment) {
  auto m = r_.Match("GET", "/v1/runs/a%2Fb%20c");
  EXPECT_EQ(Call(m), "get");
  EXPECT_EQ(m.params.at("run"), "a/b c");
  auto bad = r_.Match("GET", "/v1/runs/a%zz");
  EXPECT_EQ(bad.status, 404);
  EXPECT_NE(bad.detail.find("percent"), std::string::npos);
}

TEST(Router, RejectsMalformedAndDuplicatePatterns) {
  Router r;
  EXPECT_FALSE(r.Add("GET", "v1/x", Named("a")).ok());
  EXPECT_FALSE(r.Add("GET", "/v1/{x", Named("a")).ok());
  EXPECT_FALSE(r.Add("GET", "/v1/{}", Named("a")).ok());
  EXPECT_FALSE(r.Add("GET", "/v1/{a}/{a}", Named("a")).ok());
  EXPECT_FALSE(r.Add("GET", "/v1/x{a}", Named("a")).ok());
  EXPECT_FALSE(r.Add("GET", "/v1/{a}b", Named("a")).ok());
  ASSERT_TRUE(r.Add("GET", "/v1/{a}", Named("a")).ok());
  EXPECT_EQ(r.Add("GET", "/v1/{a}", Named("b")).code(), Status::Code::kAlreadyExists);
  EXPECT_TRUE(r.Add("PUT", "/v1/{a}", Named("b")).ok());
  auto list = r.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1], (std::pair<std::string, std::string>{"PUT", "/v1/{a}"}));
}

}  // namespace
}  // namespace herd::api
