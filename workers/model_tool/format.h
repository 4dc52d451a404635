#pragma once
// Text shared by herd-model's commands.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "workers/model/config.h"

namespace herd::model_tool {

// "[576, 49152]"
std::string ShapeText(const std::vector<int64_t>& shape);
// "d=576 L=30 H=9 Hkv=3 hd=64 f=1536 V=49152 ctx=8192 rope_theta=100000 eps=1e-05 tied"
std::string ConfigLine(const model::LlamaConfig& c);
// "Q4_1 210, F32 61, Q8_0 1": most frequent first.
std::string CountsText(const std::map<std::string, int64_t>& counts);
// 134515008 → "134.5M"
std::string HumanCount(int64_t n);
// The first line of a chat template, cut to max_chars with "...".
std::string FirstLine(const std::string& text, size_t max_chars = 72);

}  // namespace herd::model_tool
