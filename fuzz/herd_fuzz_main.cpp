// herd-fuzz: one libFuzzer binary for every target in fuzz/targets.h, chosen
// by HERD_FUZZ_TARGET (deploy/fuzz.sh). Built only with -DHERD_FUZZ=ON and
// clang.
#include <cstdio>
#include <cstdlib>

#include "fuzz/targets.h"

namespace {
herd::fuzz::Target g_target = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* name = std::getenv("HERD_FUZZ_TARGET");
  g_target = name ? herd::fuzz::FindTarget(name) : nullptr;
  if (g_target == nullptr) {
    std::fprintf(stderr, "herd-fuzz: set HERD_FUZZ_TARGET to one of:");
    for (const auto& t : herd::fuzz::Targets()) std::fprintf(stderr, " %s", t.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_target(data, size);
  return 0;
}
