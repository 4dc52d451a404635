#pragma once
// A fresh directory under the system temp dir for one test, removed (with
// everything in it) when the object goes out of scope.
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

namespace herd::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    std::random_device rd;
    path_ = (std::filesystem::temp_directory_path() /
             ("herd-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd())))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace herd::testing
