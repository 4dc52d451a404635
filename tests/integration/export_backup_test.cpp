// Exports and backups against real herdd processes: every export kind
// streamed over several pages, the errors of a bad kind, run or round,
// herdctl export and backup, and a backup restored with herdd
// --restore-backup into a new data dir that serves the same annotations.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "api/wire/problem.h"
#include "herdd_process.h"

namespace herd::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// More records than one export page (1000), so exports span several chunks.
constexpr int kAnnotations = 2300;
constexpr int kPrompts = 1200;

class ExportBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_.path() + "/base");
    std::ofstream(tmp_.path() + "/base/config.json") << R"({"vocab_size": 264})";  // herd's byte vocabulary: read with the byte tokenizer
    ASSERT_TRUE(herdd_.Start()) << herdd_.Log();
    c_ = herdd_.Client();
    json cfg = {{"name", "export"}, {"base_checkpoint", tmp_.path() + "/base"}};
    auto r = c_->Request("POST", "/v1/runs", cfg.dump());
    ASSERT_EQ(r->status, 201) << r->body;
    run_ = json::parse(r->body)["run"]["id"];

    std::string anns, prompts;
    for (int i = 0; i < kAnnotations; ++i) {
      anns += json{{"id", "a" + std::to_string(i)}, {"prompt", "q" + std::to_string(i)},
                   {"chosen", "yes " + std::to_string(i)}, {"rejected", "no"}}.dump() + "\n";
    }
    for (int i = 0; i < kPrompts; ++i) {
      prompts += json{{"id", "p" + std::to_string(i)}, {"prompt", "say " + std::to_string(i)}}.dump() + "\n";
    }
    r = c_->Request("POST", "/v1/runs/" + run_ + "/annotations", anns);
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_EQ(json::parse(r->body)["accepted"], kAnnotations);
    r = c_->Request("POST", "/v1/runs/" + run_ + "/prompts", prompts);
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_EQ(json::parse(r->body)["accepted"], kPrompts);
  }

  // GETs an export; the body as it streamed in.
  std::string Export(api::HttpClient& c, const std::string& target, int* status) {
    std::string body;
    auto r = c.Download(target, [&](std::string_view piece) {
      body.append(piece);
      return Status::Ok();
    });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    *status = r.ok() ? r->status : 0;
    if (r.ok() && r->status != 200) return r->body;
    if (r.ok()) {
      EXPECT_EQ(r->content_type, "application/x-ndjson");
    }
    return body;
  }

  static void ExpectProblem(const Result<api::Response>& r, int status, const std::string& detail_part) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->content_type, "application/problem+json") << r->body;
    EXPECT_NE(api::ParseProblem(r->body).detail.find(detail_part), std::string::npos) << r->body;
  }

  TempDir tmp_{"export"};
  HerddProcess herdd_{tmp_.path() + "/data"};
  std::unique_ptr<api::HttpClient> c_;
  std::string run_;
};

TEST_F(ExportBackupTest, EveryKindStreamsEveryRecordOnce) {
  const std::string base = "/v1/runs/" + run_ + "/export/";
  int status = 0;
  auto anns = Lines(Export(*c_, base + "annotations", &status));
  ASSERT_EQ(status, 200);
  ASSERT_EQ(anns.size(), size_t(kAnnotations));
  std::set<std::string> ids;
  for (const auto& line : anns) {
    json j = json::parse(line);
    EXPECT_EQ(j["run_id"], run_);
    EXPECT_EQ(j["format"], "pairwise");
    EXPECT_EQ(j["responses"].size(), 2u);
    ids.insert(j["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), size_t(kAnnotations));
  EXPECT_TRUE(ids.count("a0") && ids.count("a2299"));

  auto pairs = Lines(Export(*c_, base + "pairs", &status));
  ASSERT_EQ(status, 200);
  ASSERT_EQ(pairs.size(), size_t(kAnnotations));  // one implied pair per pairwise line
  json first = json::parse(pairs[0]);
  EXPECT_EQ(first["source"], "upload");
  EXPECT_EQ(first["prompt"][0]["role"], "user");
  const uint32_t round = first["round"];
  EXPECT_EQ(Lines(Export(*c_, base + "pairs?round=" + std::to_string(round), &status)).size(),
            size_t(kAnnotations));
  EXPECT_EQ(Export(*c_, base + "pairs?round=" + std::to_string(round + 1), &status), "");
  EXPECT_EQ(status, 200);

  auto prompts = Lines(Export(*c_, base + "prompts", &status));
  ASSERT_EQ(status, 200);
  ASSERT_EQ(prompts.size(), size_t(kPrompts));
  EXPECT_EQ(json::parse(prompts[0])["split"], "train");

  // No worker ran, so there are no samples: an empty export, not an error.
  EXPECT_EQ(Export(*c_, base + "samples", &status), "");
  EXPECT_EQ(status, 200);

  // The connection stays usable after streamed bodies.
  EXPECT_EQ(c_->Request("GET", "/v1/runs/" + run_)->status, 200);
}

TEST_F(ExportBackupTest, BadKindRunOrRoundIsAProblem) {
  ExpectProblem(c_->Request("GET", "/v1/runs/" + run_ + "/export/checkpoints"), 404, "'checkpoints'");
  ExpectProblem(c_->Request("GET", "/v1/runs/run-999/export/pairs"), 404, "run-999");
  ExpectProblem(c_->Request("GET", "/v1/runs/" + run_ + "/export/annotations?round=1"), 400, "round");
  ExpectProblem(c_->Request("GET", "/v1/runs/" + run_ + "/export/pairs?round=x"), 400, "round");
}

TEST_F(ExportBackupTest, HerdctlExportsToAFile) {
  const std::string ctl = BinaryPath("herdctl") + " --url " + herdd_.url();
  const std::string file = tmp_.path() + "/annotations.jsonl";
  auto [rc, out] = Shell(ctl + " export annotations " + run_ + " -o " + file);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(std::to_string(kAnnotations) + " annotations written"), std::string::npos) << out;
  std::ifstream f(file);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(Lines(text).size(), size_t(kAnnotations));
  EXPECT_FALSE(fs::exists(file + ".partial"));

  auto [rc2, out2] = Shell(ctl + " export prompts " + run_);  // stdout
  EXPECT_EQ(rc2, 0);
  EXPECT_EQ(Lines(out2).size(), size_t(kPrompts));

  auto [rc3, out3] = Shell(ctl + " export prompts run-999 -o " + tmp_.path() + "/none.jsonl");
  EXPECT_EQ(rc3, 1) << out3;
  EXPECT_NE(out3.find("run-999"), std::string::npos) << out3;
  EXPECT_FALSE(fs::exists(tmp_.path() + "/none.jsonl"));
  EXPECT_FALSE(fs::exists(tmp_.path() + "/none.jsonl.partial"));

  auto [rc4, out4] = Shell(ctl + " export checkpoints " + run_);
  EXPECT_NE(rc4, 0) << out4;  // not a kind: refused by the command line
  EXPECT_NE(out4.find("checkpoints"), std::string::npos) << out4;
}

TEST_F(ExportBackupTest, BackupRestoresIntoANewDataDirWithTheSameAnnotations) {
  // An artifact, to see the artifacts copied and restored.
  const std::string art = "artifacts/runs/" + run_ + "/datasets/d-1.jsonl";
  fs::create_directories(fs::path(herdd_.data_dir() + "/" + art).parent_path());
  std::ofstream(herdd_.data_dir() + "/" + art) << "{\"x\":1}\n";

  int status = 0;
  const std::string before = Export(*c_, "/v1/runs/" + run_ + "/export/annotations", &status);
  ASSERT_EQ(status, 200);
  const std::string backup = tmp_.path() + "/backup";
  auto r = c_->Request("POST", "/v1/backups", json{{"dir", backup}}.dump());
  ASSERT_EQ(r->status, 201) << r->body;
  json b = json::parse(r->body)["backup"];
  EXPECT_EQ(b["artifact_files"], 1);
  EXPECT_TRUE(fs::exists(backup + "/BACKUP.json"));
  EXPECT_TRUE(fs::exists(backup + "/db/CURRENT"));

  // Refusals name the field.
  ExpectProblem(c_->Request("POST", "/v1/backups", json{{"dir", backup}}.dump()), 409, "'dir'");
  ExpectProblem(c_->Request("POST", "/v1/backups", json{{"dir", "relative/path"}}.dump()), 400, "'dir'");
  ExpectProblem(c_->Request("POST", "/v1/backups", "{}"), 400, "'dir'");

  // herdctl takes one too.
  auto [rc, out] = Shell(BinaryPath("herdctl") + " --url " + herdd_.url() + " backup create " + tmp_.path() +
                         "/backup-2");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(fs::exists(tmp_.path() + "/backup-2/BACKUP.json"));

  // Written after the backup: not in it.
  r = c_->Request("POST", "/v1/runs/" + run_ + "/annotations",
                  R"({"id":"late","prompt":"q","chosen":"a","rejected":"b"})" "\n");
  ASSERT_EQ(r->status, 200);

  const std::string herdd = BinaryPath("herdd");
  const std::string restored = tmp_.path() + "/restored";
  auto [rc2, out2] = Shell(herdd + " --restore-backup " + backup + " --data-dir " + restored);
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_TRUE(fs::exists(restored + "/" + art));
  // A second restore into the same dir, or from a directory that is not a
  // backup, fails and says why.
  auto [rc3, out3] = Shell(herdd + " --restore-backup " + backup + " --data-dir " + restored);
  EXPECT_EQ(rc3, 1);
  EXPECT_NE(out3.find("already holds a database"), std::string::npos) << out3;
  auto [rc4, out4] = Shell(herdd + " --restore-backup " + tmp_.path() + "/base --data-dir " + tmp_.path() + "/x");
  EXPECT_EQ(rc4, 1);
  EXPECT_NE(out4.find("BACKUP.json"), std::string::npos) << out4;
  EXPECT_FALSE(fs::exists(tmp_.path() + "/x/db"));

  HerddProcess again(restored);
  ASSERT_TRUE(again.Start()) << again.Log();
  auto c2 = again.Client();
  EXPECT_EQ(Export(*c2, "/v1/runs/" + run_ + "/export/annotations", &status), before);
  EXPECT_EQ(status, 200);
  auto run = c2->Request("GET", "/v1/runs/" + run_);
  ASSERT_EQ(run->status, 200) << run->body;
  EXPECT_EQ(json::parse(run->body)["run"]["name"], "export");
}

}  // namespace
}  // namespace herd::testing
