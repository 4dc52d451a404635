// Every input in fuzz/corpus/<target>/ (seeds and what libFuzzer kept) and
// fuzz/crashers/<target>/ (inputs that once crashed, kept as regressions)
// through its target, in every test run: none may crash. Plus mutations of
// each corpus file that a careless parser trips on (truncations, flipped
// bytes), so CI exercises the error paths without libFuzzer.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "fuzz/targets.h"

namespace herd::fuzz {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Feed(Target t, const std::string& bytes) {
  t(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

class Replay : public ::testing::TestWithParam<NamedTarget> {};

TEST_P(Replay, CorpusCrashersAndMutationsRunClean) {
  const NamedTarget& t = GetParam();
  const fs::path root = fs::path(HERD_SOURCE_DIR) / "fuzz";
  std::vector<fs::path> inputs;
  for (const char* dir : {"corpus", "crashers"}) {
    const fs::path d = root / dir / t.name;
    if (!fs::exists(d)) continue;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.is_regular_file()) inputs.push_back(e.path());
    }
  }
  std::sort(inputs.begin(), inputs.end());
  // About 4000 mutated runs per target however large the corpus grows.
  const int mutations = std::max<int>(1, 4000 / std::max<int>(1, static_cast<int>(inputs.size())));
  int files = 0;
  std::mt19937_64 rng(7);
  for (const fs::path& path : inputs) {
    const std::string bytes = ReadAll(path);
    SCOPED_TRACE(path.string());
    Feed(t.run, bytes);
    ++files;
    // Every prefix at a few cut points, and bytes flipped at random.
    for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 1}) {
      if (cut < bytes.size()) Feed(t.run, bytes.substr(0, cut));
    }
    for (int k = 0; k < mutations && !bytes.empty(); ++k) {
      std::string m = bytes;
      for (int f = 0; f < 4; ++f) m[rng() % m.size()] = static_cast<char>(rng());
      Feed(t.run, m);
    }
  }
  EXPECT_GE(files, 2) << "fuzz/corpus/" << t.name << " needs seeds";
}

INSTANTIATE_TEST_SUITE_P(Targets, Replay, ::testing::ValuesIn(Targets()),
                         [](const ::testing::TestParamInfo<NamedTarget>& i) { return std::string(i.param.name); });

TEST(FuzzTargets, EveryTargetHasACorpusAndFindsByName) {
  for (const auto& t : Targets()) {
    EXPECT_EQ(FindTarget(t.name), t.run);
    EXPECT_TRUE(fs::is_directory(fs::path(HERD_SOURCE_DIR) / "fuzz" / "corpus" / t.name)) << t.name;
  }
  EXPECT_EQ(FindTarget("nope"), nullptr);
}

}  // namespace
}  // namespace herd::fuzz
