#pragma once
// herd's parsers of outside input as fuzz targets: each takes any bytes and
// must return without crashing, hanging or leaking, whatever it is given
// (errors are values). The same entry points serve libFuzzer (herd-fuzz,
// deploy/fuzz.sh) and the replay of the checked-in corpora in every test
// run (tests/fuzz). See docs/architecture.md "Fuzzing".
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace herd::fuzz {

using Target = void (*)(const uint8_t* data, size_t size);

struct NamedTarget {
  const char* name;  // also the corpus folder: fuzz/corpus/<name>/
  Target run;
};

// Every target, in a fixed order.
const std::vector<NamedTarget>& Targets();
// nullptr for an unknown name.
Target FindTarget(std::string_view name);

}  // namespace herd::fuzz
