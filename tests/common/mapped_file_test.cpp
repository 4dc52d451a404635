#include "common/mapped_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "tests/testing/temp_dir.h"

namespace herd {
namespace {

TEST(MappedFile, MapsTheBytesAndKeepsThemWhereTheyAreWhenMoved) {
  testing::TempDir dir("mapped");
  const std::string path = dir.path() + "/f.bin";
  std::ofstream(path, std::ios::binary) << std::string("herd\0bytes", 10);
  auto f = MappedFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), 10u);
  EXPECT_EQ(std::memcmp(f->data(), "herd\0bytes", 10), 0);
  const std::byte* at = f->data();
  MappedFile moved = std::move(*f);
  EXPECT_EQ(moved.data(), at);
  EXPECT_EQ(f->data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from file is empty
  EXPECT_EQ(f->size(), 0u);
}

TEST(MappedFile, EmptyMissingAndNonRegularFiles) {
  testing::TempDir dir("mapped");
  const std::string empty = dir.path() + "/empty";
  std::ofstream(empty).close();
  auto e = MappedFile::Open(empty);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->size(), 0u);
  EXPECT_EQ(e->data(), nullptr);

  auto missing = MappedFile::Open(dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("/nope"), std::string::npos);

  auto d = MappedFile::Open(dir.path());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(d.status().message().find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace herd
