#pragma once
// safetensors files (the HF weight format) and sharded sets of them.
//
// File layout: u64 little-endian N, then N bytes of JSON header
//   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
//    "data_offsets": [begin, end]}, ...}
// then the data; offsets are relative to the first byte after the header.
// Reading is memory-mapped and validates the header strictly (see
// docs/checkpoints.md): a truncated or corrupt file is a DataLoss Status that
// names the file and the tensor, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"

namespace herd::model {

// The first five are read (floats to fp32, ints to int64); the rest are
// recognised so a header can be validated, and refused when read.
enum class DType { kF32, kBF16, kF16, kI32, kI64, kF64, kI8, kU8, kI16, kU16, kU32, kU64,
                   kBool, kF8E4M3, kF8E5M2 };

const char* DTypeName(DType d);                 // "F32", "BF16", ...
Result<DType> ParseDType(const std::string& s);  // InvalidArgument on others
size_t DTypeSize(DType d);                       // bytes per element

// Round-to-nearest-even fp32 → bf16 (NaN stays NaN), and bf16 → fp32.
uint16_t FloatToBf16(float f);
float Bf16ToFloat(uint16_t b);
// IEEE half precision, round-to-nearest-even, with subnormals and inf.
uint16_t FloatToF16(float f);
float F16ToFloat(uint16_t h);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset into the data section
  uint64_t end = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
};

// One memory-mapped safetensors file. Movable, not copyable; unmaps on
// destruction.
class SafetensorsFile {
 public:
  static Result<SafetensorsFile> Open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& o) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&& o) noexcept = default;

  const std::string& path() const { return path_; }
  // In file order (by offset).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* Find(const std::string& name) const;

  // Converts a floating tensor (F32, BF16, F16) to fp32 into out[0..n).
  // n must equal the tensor's numel. Errors name the file and tensor.
  Status ReadF32(const std::string& name, float* out, int64_t n) const;
  // Integer tensors (I32, I64) widened to int64.
  Status ReadI64(const std::string& name, int64_t* out, int64_t n) const;
  // The raw bytes of a tensor (little-endian, as stored).
  const std::byte* Data(const TensorInfo& t) const { return data_ + t.begin; }

 private:
  // The tensor `name`, which must have n elements (NotFound / InvalidArgument
  // naming the file and the tensor otherwise).
  Result<const TensorInfo*> FindSized(const std::string& name, int64_t n) const;
  SafetensorsFile() = default;

  std::string path_;
  MappedFile map_;                   // the whole file; its bytes do not move with it
  const std::byte* data_ = nullptr;  // first byte after the header
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;  // name → position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Parses and validates a header against a data section of data_size bytes.
// Exposed so tests (and a fuzzer) can drive it without files. `file` names
// the file in errors.
Status ParseSafetensorsHeader(const std::string& file, const std::string& header,
                              uint64_t data_size, std::vector<TensorInfo>* tensors,
                              std::map<std::string, std::string>* metadata);

// A tensor to write: fp32 values converted to the file's dtype, or (for
// fixtures and token tensors) raw little-endian bytes of an integer dtype.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  const float* f32 = nullptr;       // floating tensors: numel fp32 values
  const void* raw = nullptr;        // or raw bytes of raw_dtype (I32/I64/F32)
  DType raw_dtype = DType::kI64;    // Default: I64; used only with raw
};

// Streams one file: the header is written from the specs up front, then each
// tensor's data in spec order, so a caller (e.g. model averaging) can hold one
// tensor at a time. The file appears complete only after Finish() (written
// to path and fsynced; a failed or abandoned writer removes its partial file).
class SafetensorsWriter {
 public:
  // float_dtype: the stored dtype of fp32 tensors (F32, BF16 or F16).
  // Shapes must be non-negative and names unique and not "__metadata__".
  static Result<SafetensorsWriter> Create(const std::string& path,
                                          const std::vector<TensorSpec>& specs,
                                          DType float_dtype,
                                          const std::map<std::string, std::string>& metadata = {});
  SafetensorsWriter(SafetensorsWriter&& o) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&&) = delete;
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  ~SafetensorsWriter();

  // The next tensor's values: fp32 (for a float spec) or raw bytes (raw spec).
  Status AppendF32(const float* data, int64_t n);
  Status AppendRaw(const void* bytes, int64_t n);
  Status Finish();

 private:
  SafetensorsWriter() = default;
  Status Write(const void* p, size_t n);

  std::string path_;
  std::FILE* f_ = nullptr;
  DType float_dtype_ = DType::kF32;
  std::vector<TensorSpec> specs_;  // data pointers unused here
  size_t next_ = 0;
  std::vector<uint16_t> buf_;      // conversion chunk, reused
  bool finished_ = false;
};

// Writes all specs (their f32/raw pointers) to one file.
Status WriteSafetensors(const std::string& path, const std::vector<TensorSpec>& specs,
                        DType float_dtype,
                        const std::map<std::string, std::string>& metadata = {});

// Bytes a tensor takes on disk for a float dtype (raw specs use raw_dtype).
uint64_t StoredBytes(const TensorSpec& s, DType float_dtype);

// Writes specs into dir as model.safetensors, or, when max_shard_bytes > 0
// and the total exceeds it, as model-0000i-of-0000n.safetensors shards plus
// model.safetensors.index.json ({"metadata": {"total_size": bytes},
// "weight_map": {name: file}}). Shards fill in spec order; a tensor larger
// than the limit gets a shard of its own. max_shard_bytes Default: 0 (one file).
Status WriteSafetensorsDir(const std::string& dir, const std::vector<TensorSpec>& specs,
                           DType float_dtype, uint64_t max_shard_bytes = 0);

// The weights of a checkpoint directory: model.safetensors, or the shards
// named by model.safetensors.index.json. The index must list every tensor
// of every shard exactly once, and nothing else.
class SafetensorsSet {
 public:
  static Result<SafetensorsSet> Open(const std::string& dir);

  struct Entry {
    const SafetensorsFile* file;
    const TensorInfo* info;
  };
  // Every tensor, by name.
  const std::map<std::string, Entry>& tensors() const { return entries_; }
  const Entry* Find(const std::string& name) const;
  Status ReadF32(const std::string& name, float* out, int64_t n) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> entries_;
};

}  // namespace herd::model
