#include "common/atomic_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every entry of dir but the given one: temporaries must not outlive a call.
std::vector<std::string> OtherEntries(const std::string& dir, const std::string& keep) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename() != keep) out.push_back(e.path().filename().string());
  }
  return out;
}

TEST(WriteFileAtomic, CreatesThenReplacesWithoutLeftovers) {
  testing::TempDir tmp("atomic");
  const std::string path = tmp.path() + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, "first\n").ok());
  EXPECT_EQ(ReadAll(path), "first\n");
  const std::string big(1 << 20, 'x');  // more than one write() may take
  ASSERT_TRUE(WriteFileAtomic(path, big).ok());
  EXPECT_EQ(ReadAll(path), big);
  ASSERT_TRUE(WriteFileAtomic(path, "").ok());
  EXPECT_EQ(fs::file_size(path), 0u);
  EXPECT_TRUE(OtherEntries(tmp.path(), "state.json").empty());
}

TEST(WriteFileAtomic, BinaryContentsKeptExactly) {
  testing::TempDir tmp("atomic");
  const std::string path = tmp.path() + "/blob";
  const std::string data("a\0b\n\xff", 5);
  ASSERT_TRUE(WriteFileAtomic(path, data).ok());
  EXPECT_EQ(ReadAll(path), data);
}

TEST(WriteFileAtomic, MissingDirectoryIsAnErrorNamingThePath) {
  testing::TempDir tmp("atomic");
  const std::string path = tmp.path() + "/no/such/dir/out.json";
  Status s = WriteFileAtomic(path, "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_FALSE(fs::exists(path));
}

TEST(WriteFileAtomic, UnwritableDirectoryKeepsTheOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  testing::TempDir tmp("atomic");
  const std::string dir = tmp.path() + "/ro";
  fs::create_directory(dir);
  const std::string path = dir + "/out.json";
  ASSERT_TRUE(WriteFileAtomic(path, "old").ok());
  ASSERT_EQ(::chmod(dir.c_str(), 0555), 0);
  Status s = WriteFileAtomic(path, "new");
  ::chmod(dir.c_str(), 0755);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_EQ(ReadAll(path), "old");
  EXPECT_TRUE(OtherEntries(dir, "out.json").empty());
}

TEST(WriteFileAtomic, TargetThatIsADirectoryIsRefused) {
  testing::TempDir tmp("atomic");
  const std::string path = tmp.path() + "/sub";
  fs::create_directories(path + "/inner");
  Status s = WriteFileAtomic(path, "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_TRUE(OtherEntries(tmp.path(), "sub").empty());
}

TEST(SyncDirectory, MissingDirectoryNamesIt) {
  testing::TempDir tmp("atomic");
  const std::string dir = tmp.path() + "/gone";
  Status s = SyncDirectory(dir);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dir), std::string::npos) << s.ToString();
  EXPECT_TRUE(SyncDirectory(tmp.path()).ok());
}

}  // namespace
}  // namespace herd
