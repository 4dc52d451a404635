// load_base_model DIR [SEED]: writes the tiny random chat Llama the tests
// use (tests/testing/tiny_llama.h) as an HF checkpoint directory, so
// bench/load/run.sh can create a run whose collect stage generates real
// annotation requests in seconds.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/testing/tiny_llama.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: load_base_model DIR [SEED]\n");
    return 2;
  }
  const uint64_t seed = argc == 3 ? std::strtoull(argv[2], nullptr, 10) : 1;
  herd::Status s = herd::testing::SaveTinyChatModel(argv[1], seed);
  if (!s.ok()) {
    std::fprintf(stderr, "load_base_model: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
