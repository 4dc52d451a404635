#pragma once
// Key layouts per column family (docs/store.md "Keys"). Str = u32 BE length
// + bytes, U32/U64 = big-endian, U8 = one byte.
#include <cstdint>
#include <string>
#include <string_view>

#include "stores/keys.h"
#include "stores/records.h"

namespace herd::stores::layout {

// Longest id/name accepted in a key (bytes). Keeping strings < 2^24 bytes
// means every Str-led key starts with 0x00, so "\x01" bounds a whole-family scan.
inline constexpr size_t kMaxKeyString = 4096;
inline const std::string kWholeFamilyLo;          // ""
inline const std::string kWholeFamilyHi = "\x01";

inline std::string Id(std::string_view id) { return KeyWriter().Str(id).Take(); }
inline std::string RunPrefix(std::string_view run) { return KeyWriter().Str(run).Take(); }
inline std::string RunRound(std::string_view run, uint32_t round) {
  return KeyWriter().Str(run).U32(round).Take();
}
inline std::string RunName(std::string_view run, std::string_view id) {
  return KeyWriter().Str(run).Str(id).Take();
}
inline std::string Sample(std::string_view run, uint32_t round, std::string_view prompt, uint32_t idx) {
  return KeyWriter().Str(run).U32(round).Str(prompt).U32(idx).Take();
}
inline std::string Pair(std::string_view run, uint32_t round, std::string_view id) {
  return KeyWriter().Str(run).U32(round).Str(id).Take();
}
inline std::string Event(std::string_view run, uint64_t seq) { return KeyWriter().Str(run).U64(seq).Take(); }
// Higher priority first: the key stores INT32_MAX - priority (fits u32).
// The task id ends the key so two tasks with the same seq never collide.
inline std::string Queue(TaskState s, int32_t priority, uint64_t seq, std::string_view task_id) {
  return KeyWriter().U8(uint8_t(s)).U32(uint32_t(int64_t(INT32_MAX) - priority)).U64(seq).Str(task_id).Take();
}
inline std::string DatasetPrefix(std::string_view run, uint32_t round, std::string_view dataset) {
  return KeyWriter().Str(run).U32(round).Str(dataset).Take();
}
inline std::string DatasetMember(const herd::stores::DatasetMember& m) {
  return KeyWriter().Str(m.run_id).U32(m.round).Str(m.dataset).U32(m.member_round).Str(m.member_id)
      .U32(m.member_idx).Take();
}

}  // namespace herd::stores::layout
