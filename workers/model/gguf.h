#pragma once
// GGUF files (llama.cpp's model format), read-only, versions 2 and 3.
//
// Layout (all little-endian):
//   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count x (string key, u32 value type, value),
//   tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
//                   u64 offset),
//   padding to `general.alignment` (Default: 32), then the data section;
//   tensor offsets are relative to it and multiples of the alignment.
// A string is u64 length + bytes (no NUL); an array is u32 element type +
// u64 count + elements. ne[0] is the innermost (fastest-varying) dimension,
// so a GGUF tensor with ne = [d, V] is PyTorch shape (V, d).
//
// Opening validates everything the reader relies on (bounds, sizes,
// alignment, duplicate names); each failure is a DataLoss Status naming the
// file and what is wrong, never a crash. See docs/checkpoints.md.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"

namespace herd::model {

enum class GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
const char* GgufValueTypeName(GgufValueType t);  // "u32", "string", ...

// One metadata value. Integers keep their sign in the field that fits them
// (i for signed types and bool, u for unsigned), floats are widened to double.
struct GgufValue {
  GgufValueType type = GgufValueType::kU8;
  int64_t i = 0;                                 // I8..I64, Bool (0 or 1)
  uint64_t u = 0;                                // U8..U64
  double f = 0;                                  // F32, F64
  std::string s;                                 // String
  GgufValueType elem_type = GgufValueType::kU8;  // Array
  std::vector<GgufValue> items;                  // Array

  bool is_integer() const;
  bool is_float() const { return type == GgufValueType::kF32 || type == GgufValueType::kF64; }
  // The value as text for people (inspect): 3, 1e-05, "smollm", [49152 x string].
  std::string Describe() const;
};

// ggml tensor types with their numeric ids (ggml.h's enum ggml_type).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

// "Q4_1", or nullptr for an id ggml does not (or no longer) define.
const char* GgmlTypeName(GgmlType t);
// Elements per block and bytes per block (F32: 1, 4; Q4_0: 32, 18; Q4_K: 256, 144).
// False for an unknown id.
bool GgmlBlockLayout(GgmlType t, int64_t* block_elems, int64_t* block_bytes);
// Whether DequantizeGgml handles the type: F32, F16, BF16, Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
bool CanDequantize(GgmlType t);

// Converts n elements (a multiple of the type's block size) stored as type t
// at src into fp32. Bit-for-bit what ggml's dequantize_row_* and gguf-py's
// gguf.quants.dequantize compute (float32 arithmetic in the same order, no
// fused multiply-add). InvalidArgument for an unsupported type or a bad n.
Status DequantizeGgml(GgmlType t, const std::byte* src, int64_t n, float* out);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // innermost first: ne[0] = columns
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // into the data section, a multiple of the alignment
  uint64_t bytes = 0;   // stored size
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
  }
  // PyTorch (outermost-first) shape: ne reversed.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

// A parsed GGUF file; its data section is memory-mapped (Open) or owned
// (FromBytes). Movable, not copyable.
class GgufFile {
 public:
  static Result<GgufFile> Open(const std::string& path);
  // Parses an in-memory image; `source` names it in errors. For tests.
  static Result<GgufFile> FromBytes(const std::string& source, std::string bytes);

  GgufFile(GgufFile&& o) noexcept;
  GgufFile& operator=(GgufFile&& o) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile() = default;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section

  // Metadata in file order, and lookup by key (nullptr when absent).
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* Find(const std::string& key) const;

  // Typed getters. NotFound "<file>: metadata key 'k' missing" when absent;
  // InvalidArgument naming the key and both types on a type mismatch.
  // GetInt takes any integer type (a u64 above INT64_MAX is out of range);
  // GetFloat takes floats and integers.
  Result<int64_t> GetInt(const std::string& key) const;
  Result<double> GetFloat(const std::string& key) const;
  Result<bool> GetBool(const std::string& key) const;
  Result<std::string> GetString(const std::string& key) const;
  Result<std::vector<std::string>> GetStringArray(const std::string& key) const;
  Result<std::vector<int64_t>> GetIntArray(const std::string& key) const;

  // In file order; lookup by name (nullptr when absent).
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(const std::string& name) const;

  // The stored bytes of a tensor (t.bytes of them).
  const std::byte* Data(const GgufTensorInfo& t) const { return data_ + t.offset; }
  // Dequantizes a tensor to fp32 into out[0..n); n must be its numel. An
  // unsupported type is InvalidArgument "<file>: tensor 'x' has type IQ2_XXS,
  // which herd cannot dequantize (supported: ...)".
  Status ReadF32(const GgufTensorInfo& t, float* out, int64_t n) const;

 private:
  GgufFile() = default;
  Status Parse(const std::byte* p, uint64_t size);

  std::string path_;
  MappedFile map_;     // Open: the whole file
  std::string owned_;  // FromBytes: the whole image
  const std::byte* data_ = nullptr;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace herd::model
