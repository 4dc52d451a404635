// Checkpoints herd writes carry checksums.sha256; a changed or missing
// file is found when the checkpoint is loaded, naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tasks/protocol.h"
#include "tests/integration/herdd_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tiny_llama.h"
#include "workers/runtime/task_io.h"

namespace herd::worker {
namespace {

namespace fs = std::filesystem;

class ChecksumsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(herd::testing::SaveTinyChatModel(dir_, 3).ok()); }
  herd::testing::TempDir tmp_{"checksums"};
  std::string dir_ = tmp_.path() + "/ck";
};

TEST_F(ChecksumsTest, SavedCheckpointListsEveryFileAndSha256sumAgrees) {
  std::ifstream f(dir_ + "/" + kChecksumsFile);
  ASSERT_TRUE(f.is_open());
  int lines = 0;
  for (std::string line; std::getline(f, line);) ++lines;
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.path().filename() != kChecksumsFile;
  EXPECT_EQ(lines, files);
  EXPECT_TRUE(VerifyCheckpoint(dir_).ok());
  // The format is sha256sum's: the coreutils tool checks it too.
  auto [rc, out] = herd::testing::Shell("cd " + dir_ + " && sha256sum --check --quiet " + kChecksumsFile);
  EXPECT_EQ(rc, 0) << out;
}

TEST_F(ChecksumsTest, ChangedFileIsDataLossNamingIt) {
  {
    std::fstream f(dir_ + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(dir_ + "/model.safetensors") - 8));
    f.write("flipped!", 8);
  }
  Status s = VerifyCheckpoint(dir_);
  EXPECT_EQ(s.code(), Status::Code::kDataLoss);
  EXPECT_NE(s.message().find(std::string(tasks::kCorruptCheckpointPrefix) + dir_ + ": model.safetensors: sha256"),
            std::string::npos)
      << s.ToString();
  // Loading it fails the same way, before any tensor is read.
  auto m = LoadModel(dir_, 1, 8);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kDataLoss);
}

TEST_F(ChecksumsTest, MissingFileAndBadManifestAreDataLoss) {
  fs::remove(dir_ + "/config.json");
  Status s = VerifyCheckpoint(dir_);
  EXPECT_EQ(s.code(), Status::Code::kDataLoss);
  EXPECT_NE(s.message().find("config.json: missing"), std::string::npos) << s.ToString();
  std::ofstream(dir_ + "/" + kChecksumsFile) << "not a checksum line\n";
  s = VerifyCheckpoint(dir_);
  EXPECT_EQ(s.code(), Status::Code::kDataLoss);
  EXPECT_NE(s.message().find("line 1"), std::string::npos) << s.ToString();
}

TEST_F(ChecksumsTest, DirectoryWithoutChecksumsPassesAndTheDigestIgnoresTheFile) {
  auto sealed = DescribeCheckpoint(dir_);
  ASSERT_TRUE(sealed.ok());
  fs::remove(dir_ + "/" + kChecksumsFile);
  EXPECT_TRUE(VerifyCheckpoint(dir_).ok());  // a user's HF model has none
  auto bare = DescribeCheckpoint(dir_);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(sealed->sha256, bare->sha256);
}

}  // namespace
}  // namespace herd::worker
