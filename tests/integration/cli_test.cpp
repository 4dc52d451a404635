// The three executables run as real processes and answer --version/--help.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace {

struct Ran {
  int status;
  std::string out;
};

Ran RunCommand(const std::string& cmd) {
  std::array<char, 512> buf;
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

std::string Bin(const std::string& name) {
  std::string dir = HERD_BINARY_DIR;
  if (name == "herdd") return dir + "/daemon/herdd";
  if (name == "herd-worker") return dir + "/workers/herd-worker";
  return dir + "/api/herdctl";
}

class CliTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CliTest, VersionAndHelp) {
  std::string name = GetParam();
  Ran v = RunCommand(Bin(name) + " --version");
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_NE(v.out.find(name + " 0."), std::string::npos) << v.out;
  Ran h = RunCommand(Bin(name) + " --help");
  EXPECT_EQ(h.status, 0) << h.out;
  EXPECT_NE(h.out.find("Usage"), std::string::npos) << h.out;
}

TEST_P(CliTest, BadCommandLineFailsWithMessage) {
  Ran r = RunCommand(Bin(GetParam()) + " --no-such-flag");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("Run with --help"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Binaries, CliTest, ::testing::Values("herdd", "herd-worker", "herdctl"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n) if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
