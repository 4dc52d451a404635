// Artifact store: ids validated before any path is built, stored paths
// resolved only in their store-built shape, directory hashes, deletion and
// disk usage.
#include "stores/artifacts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <atomic>
#include <thread>

#include "common/sha256.h"
#include "tests/stores/test_util.h"

namespace herd::stores {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

TEST(ArtifactsTest, OnlyStoreIssuedIdsBuildPaths) {
  EXPECT_TRUE(ArtifactStore::ValidateId("run-12", "run id").ok());
  EXPECT_TRUE(ArtifactStore::ValidateId("ckpt-3-avg", "id").ok());
  const std::vector<std::string> bads = {"", "..", "../x", "a/b", "Run-1", "-x", "x y", std::string(65, 'a'), "a\\b",
                          std::string("a\0b", 3), "é"};
  for (const std::string& bad : bads) {
    EXPECT_TRUE(ArtifactStore::ValidateId(bad, "run id").IsInvalidArgument()) << bad;
    EXPECT_FALSE(ArtifactStore::CheckpointRelPath(bad, "ckpt-1").ok()) << bad;
    EXPECT_FALSE(ArtifactStore::DatasetRelPath("run-1", bad).ok()) << bad;
  }
  EXPECT_EQ(*ArtifactStore::CheckpointRelPath("run-1", "ckpt-2"), "runs/run-1/checkpoints/ckpt-2");
  EXPECT_EQ(*ArtifactStore::DatasetRelPath("run-1", "sft-r2"), "runs/run-1/datasets/sft-r2.jsonl");
}

TEST(ArtifactsTest, ResolveAcceptsOnlyStoreBuiltShapes) {
  ArtifactStore a("/data/artifacts");
  EXPECT_EQ(*a.Resolve("runs/run-1/checkpoints/ckpt-2"), "/data/artifacts/runs/run-1/checkpoints/ckpt-2");
  EXPECT_EQ(*a.Resolve("runs/run-1/datasets/sft-r2.jsonl"), "/data/artifacts/runs/run-1/datasets/sft-r2.jsonl");
  for (const char* bad : {"runs/../checkpoints/x", "/etc/passwd", "runs/run-1/checkpoints/../../x",
                          "runs/run-1/checkpoints/ckpt-2/", "runs/run-1/other/x", "runs/run-1/datasets/x.txt",
                          "runs/run-1/datasets/.jsonl", "x/run-1/checkpoints/c", ""}) {
    EXPECT_TRUE(a.Resolve(bad).status().IsInvalidArgument()) << bad;
  }
}

TEST(ArtifactsTest, HashesDeletionAndUsage) {
  testing::TempDir tmp;
  ArtifactStore a(tmp.path() + "/artifacts");
  auto dir = a.MakeCheckpointDir("run-1", "ckpt-1");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  WriteFile(fs::path(*dir) / "config.json", "{}");
  WriteFile(fs::path(*dir) / "model.safetensors", std::string(3000, 'w'));
  uint64_t n = 0;
  auto fh = ArtifactStore::HashFile(fs::path(*dir) / "model.safetensors", &n);
  ASSERT_TRUE(fh.ok());
  EXPECT_EQ(*fh, Sha256::HexHash(std::string(3000, 'w')));
  EXPECT_EQ(n, 3000u);
  auto d1 = ArtifactStore::HashDirectory(*dir);
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(d1->files, 2u);
  EXPECT_EQ(d1->bytes, 3002u);
  // Independent recomputation of the documented manifest hash.
  std::string manifest = std::string("config.json") + '\0' + Sha256::HexHash("{}") + "\n" + "model.safetensors" +
                         '\0' + Sha256::HexHash(std::string(3000, 'w')) + "\n";
  EXPECT_EQ(d1->sha256, Sha256::HexHash(manifest));
  // A copy hashes the same; a rename or edit changes it.
  auto dir2 = a.MakeCheckpointDir("run-1", "ckpt-2");
  ASSERT_TRUE(dir2.ok());
  fs::copy(*dir, *dir2, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  EXPECT_EQ(ArtifactStore::HashDirectory(*dir2)->sha256, d1->sha256);
  fs::rename(fs::path(*dir2) / "config.json", fs::path(*dir2) / "config2.json");
  EXPECT_NE(ArtifactStore::HashDirectory(*dir2)->sha256, d1->sha256);
  EXPECT_TRUE(ArtifactStore::HashDirectory(tmp.path() + "/missing").status().IsNotFound());

  auto ds = a.MakeDatasetPath("run-1", "sft-r1");
  ASSERT_TRUE(ds.ok());
  WriteFile(*ds, "line\n");
  auto other = a.MakeCheckpointDir("run-2", "ckpt-9");
  ASSERT_TRUE(other.ok());
  WriteFile(fs::path(*other) / "x", "12345");
  EXPECT_EQ(*a.RunDiskUsage("run-1"), 3002u * 2 + 5);
  ASSERT_TRUE(a.DeleteCheckpoint("run-1", "ckpt-2").ok());
  EXPECT_EQ(*a.RunDiskUsage("run-1"), 3002u + 5);
  ASSERT_TRUE(a.DeleteRun("run-1").ok());
  EXPECT_FALSE(fs::exists(tmp.path() + "/artifacts/runs/run-1"));
  EXPECT_EQ(*a.RunDiskUsage("run-1"), 0u);
  EXPECT_EQ(*a.RunDiskUsage("run-2"), 5u);
  EXPECT_TRUE(a.DeleteRun("../run-2").IsInvalidArgument());
  EXPECT_TRUE(fs::exists(*other));
}


// GET /v1/runs/{run} sums the run's artifacts while workers write, rename
// and delete checkpoint directories (variants go once averaged): entries
// that vanish mid-walk count as gone, never as an error. (make demo once
// died on a 500 from this race.)
TEST(ArtifactsTest, DiskUsageToleratesDirectoriesVanishingMidWalk) {
  herd::testing::TempDir tmp("artifacts-race");
  ArtifactStore a(tmp.path() + "/artifacts");
  auto keep = a.MakeCheckpointDir("run-1", "ckpt-1");
  ASSERT_TRUE(keep.ok());
  WriteFile(fs::path(*keep) / "model.safetensors", std::string(1000, 'x'));
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    for (int i = 0; !stop; ++i) {
      const std::string id = "ckpt-v" + std::to_string(i % 8);
      auto d = a.MakeCheckpointDir("run-1", id);
      if (!d.ok()) continue;
      for (int f = 0; f < 20; ++f) WriteFile(fs::path(*d) / ("sub" + std::to_string(f % 3)) / std::to_string(f), "y");
      (void)a.DeleteCheckpoint("run-1", id);
    }
  });
  int errors = 0;
  std::string first;
  for (int i = 0; i < 3000; ++i) {
    try {
      auto u = a.RunDiskUsage("run-1");
      if (!u.ok()) {
        if (errors++ == 0) first = u.status().ToString();
      } else {
        EXPECT_GE(*u, 1000u);
      }
    } catch (const std::exception& e) {
      if (errors++ == 0) first = std::string("threw: ") + e.what();
    }
  }
  stop = true;
  churn.join();
  EXPECT_EQ(errors, 0) << first;
}

}  // namespace
}  // namespace herd::stores
