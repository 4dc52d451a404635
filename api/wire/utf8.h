#pragma once
// UTF-8 validation (RFC 3629): rejects overlong forms, surrogates
// (U+D800..U+DFFF) and code points above U+10FFFF.
#include <cstddef>
#include <string_view>

namespace herd::api {

// Byte offset of the first byte of the first invalid sequence, or npos when
// the whole of s is valid UTF-8.
size_t FindInvalidUtf8(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return FindInvalidUtf8(s) == std::string_view::npos; }

}  // namespace herd::api
