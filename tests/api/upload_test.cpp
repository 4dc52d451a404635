// Annotation upload end to end: real server, streamed body, an in-memory
// AnnotationWriter standing in for the store.
#include "api/ingest/upload.h"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "api/client/client.h"
#include "api/metrics/registry.h"
#include "api/server/server.h"
#include "tests/api/test_util.h"

namespace herd::ingest {
namespace {

using namespace std::chrono_literals;

struct MemoryStore {
  std::mutex mu;
  std::map<std::string, Annotation> stored;
};

class MemoryWriter : public AnnotationWriter {
 public:
  explicit MemoryWriter(MemoryStore* s) : s_(s) {}
  Status Add(const Annotation& a, bool* duplicate) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    *duplicate = s_->stored.count(a.id) > 0 || staged_.count(a.id) > 0;
    if (!*duplicate) staged_.emplace(a.id, a);
    return Status::Ok();
  }
  Status Commit() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->stored.merge(staged_);
    return Status::Ok();
  }
  void Abort() override { staged_.clear(); }

 private:
  MemoryStore* s_;
  std::map<std::string, Annotation> staged_;
};

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api::Router r;
    ASSERT_TRUE(r.AddStreaming(
                     "POST", "/v1/runs/{run}/annotations",
                     [this](const api::Request& req) -> Result<std::unique_ptr<api::BodySink>> {
                       UploadOptions d;
                       d.ingest.default_strength = Strength::kBetter;
                       d.metrics = &registry_;
                       HERD_ASSIGN_OR_RETURN(UploadOptions o, UploadOptionsFromRequest(req, d));
                       return std::unique_ptr<api::BodySink>(new AnnotationUpload(
                           o, std::make_unique<MemoryWriter>(&store_)));
                     })
                    .ok());
    server_ = std::make_unique<api::Server>(api::ServerOptions{"127.0.0.1", 0}, std::move(r));
    ASSERT_TRUE(server_->Start().ok());
    api::ClientOptions o;
    o.base_url = "http://127.0.0.1:" + std::to_string(server_->port());
    client_ = std::move(api::HttpClient::Create(o)).value();
    dir_ = api::testing::MakeTempDir("upload");
  }
  void TearDown() override {
    server_->Stop(5s);
    std::filesystem::remove_all(dir_);
  }
  std::string Write(const std::string& name, const std::string& text) {
    auto p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  api::Response Upload(const std::string& path, const std::string& query = "") {
    auto r = client_->UploadFile("POST", "/v1/runs/r1/annotations" + query, path,
                                 "application/x-ndjson");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : api::Response();
  }

  double Count(const char* result) {
    return registry_.AddCounter("herd_annotations_total", "", {"result"})
        .WithLabels({result})
        .Value();
  }

  metrics::Registry registry_;
  MemoryStore store_;
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<api::HttpClient> client_;
  std::filesystem::path dir_;
};

// Four formats, one of each invalid kind.
const char* kMixed =
    R"({"id": "p1", "prompt": "a", "chosen": "x", "rejected": "y", "strength": "better"})" "\n"
    R"({"id": "p2", "prompt": "b", "chosen": "x", "rejected": "y", "edited": "z"})" "\n"
    R"({"id": "r1", "prompt": "c", "responses": ["1", "2", "3"], "ranking": [2, 0, 1]})" "\n"
    R"({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: no"})" "\n"
    R"({"prompt": "d", "chosen": [{"role": "user", "content": "d"}, {"role": "assistant", "content": "ok"}], "rejected": [{"role": "user", "content": "d"}, {"role": "assistant", "content": "ko"}]})" "\n"
    "\n"
    R"({"prompt": "e", "chosen": "x", "rejected": )" "\n"
    "{\"prompt\": \"f\", \"chosen\": \"\xC3\x28\", \"rejected\": \"y\"}\n"
    R"({"prompt": "g", "chosen": "x"})" "\n"
    R"({"prompt": "h", "chosen": "x", "rejected": "y", "strength": "hugely_better"})" "\n"
    R"({"prompt": "i", "chosen": "same", "rejected": "same"})" "\n"
    R"({"prompt": "j", "responses": ["a", "b", "c"], "ranking": [0, 2, 2]})" "\n";

TEST_F(UploadTest, MixedFileExactCountsAndReuploadStoresNothingTwice) {
  auto path = Write("mixed.jsonl", kMixed);
  api::Response r = Upload(path);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["accepted"], 5);
  EXPECT_EQ(j["duplicates"], 0);
  EXPECT_EQ(j["rejected"], 6);
  EXPECT_EQ(j["errors_truncated"], false);
  std::vector<int> lines;
  for (const auto& e : j["errors"]) lines.push_back(e["line"].get<int>());
  EXPECT_EQ(lines, (std::vector<int>{7, 8, 9, 10, 11, 12}));
  EXPECT_NE(j["errors"][1]["detail"].get<std::string>().find("field 'chosen'"), std::string::npos);
  EXPECT_EQ(store_.stored.size(), 5u);
  EXPECT_EQ(store_.stored.at("r1").responses, (std::vector<std::string>{"3", "1", "2"}));
  EXPECT_EQ(store_.stored.at("p2").strength, Strength::kBetter);  // run default

  api::Response again = Upload(path);
  ASSERT_EQ(again.status, 200);
  auto k = nlohmann::json::parse(again.body);
  EXPECT_EQ(k["accepted"], 0);
  EXPECT_EQ(k["duplicates"], 5);  // client ids and content-hash ids both dedupe
  EXPECT_EQ(store_.stored.size(), 5u);
  EXPECT_EQ(Count("accepted"), 5);
  EXPECT_EQ(Count("duplicate"), 5);
  EXPECT_EQ(Count("rejected"), 12);
  EXPECT_EQ(Count("aborted"), 0);
}

TEST_F(UploadTest, AtomicUploadStoresNothingOnError) {
  api::Response r = Upload(Write("mixed.jsonl", kMixed), "?atomic=true");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["type"], "urn:herd:problem:unprocessable");
  EXPECT_EQ(j["errors"].size(), 6u);
  EXPECT_EQ(j["errors"][0]["line"], 7);
  EXPECT_TRUE(store_.stored.empty());
  EXPECT_EQ(Count("aborted"), 5);
  EXPECT_EQ(Count("accepted"), 0);

  // A clean atomic upload is stored.
  api::Response ok = Upload(
      Write("clean.jsonl", R"({"id": "c1", "prompt": "p", "chosen": "a", "rejected": "b"})"),
      "?atomic=true");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(store_.stored.size(), 1u);

  api::Response bad = Upload(Write("x.jsonl", "{}"), "?atomic=maybe");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("query parameter 'atomic'"), std::string::npos);
}

TEST_F(UploadTest, LargeUploadIsStreamed) {
  // 50K lines (~4 MB), above the 8 MiB-default buffered limit is not
  // needed: the point is the sink sees it in chunks and counts are exact.
  std::string text;
  for (int i = 0; i < 50000; ++i) {
    text += R"({"id": "L)" + std::to_string(i) +
            R"(", "prompt": "p", "chosen": "a", "rejected": "b", "strength": "better"})" "\n";
  }
  api::Response r = Upload(Write("big.jsonl", text));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["accepted"], 50000);
  EXPECT_EQ(j["rejected"], 0);
  EXPECT_EQ(store_.stored.size(), 50000u);
}

}  // namespace
}  // namespace herd::ingest
