#include "workers/model/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/mapped_file.h"

namespace herd::model {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The reference implementation refuses headers above 100 MB; so do we, so a
// corrupt length cannot make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeRow {
  DType d;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::kF32, "F32", 4},     {DType::kBF16, "BF16", 2},      {DType::kF16, "F16", 2},
    {DType::kI32, "I32", 4},     {DType::kI64, "I64", 8},        {DType::kF64, "F64", 8},
    {DType::kI8, "I8", 1},       {DType::kU8, "U8", 1},          {DType::kI16, "I16", 2},
    {DType::kU16, "U16", 2},     {DType::kU32, "U32", 4},        {DType::kU64, "U64", 8},
    {DType::kBool, "BOOL", 1},   {DType::kF8E4M3, "F8_E4M3", 1}, {DType::kF8E5M2, "F8_E5M2", 1},
};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

Status Corrupt(const std::string& file, const std::string& what) {
  return Status::DataLoss(file + ": " + what);
}
Status CorruptTensor(const std::string& file, const std::string& tensor, const std::string& what) {
  return Status::DataLoss(file + ": tensor " + Quote(tensor) + ": " + what);
}

std::string ErrnoText() { return std::strerror(errno); }

// A non-negative integer that fits in u64, or false.
bool GetU64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

void PutU64LE(uint64_t v, unsigned char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

// ---- dtypes -----------------------------------------------------------------

const char* DTypeName(DType d) {
  for (const auto& r : kDTypes)
    if (r.d == d) return r.name;
  return "?";
}

Result<DType> ParseDType(const std::string& s) {
  for (const auto& r : kDTypes)
    if (s == r.name) return r.d;
  return Status::InvalidArgument("unknown dtype " + Quote(s));
}

size_t DTypeSize(DType d) {
  for (const auto& r : kDTypes)
    if (r.d == d) return r.size;
  return 0;
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(rounded >> 16);
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t FloatToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf, or NaN kept quiet
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  }
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {
    // Below 2^-14: a half subnormal, in units of 2^-24. Scaling by 2^24 is
    // exact; nearbyint rounds to nearest even (default rounding mode). A
    // result of 0x400 is the smallest normal, which has the same encoding.
    float v;
    std::memcpy(&v, &ax, 4);
    const auto m = static_cast<uint32_t>(std::nearbyint(v * 16777216.0f));
    return static_cast<uint16_t>(sign | m);
  }
  // Normal: rebias the exponent (127 → 15) and round 23 → 10 mantissa bits;
  // a mantissa carry correctly bumps the exponent.
  const uint32_t e = ax - 0x38000000u;
  const uint32_t r = e + 0xfffu + ((e >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

float F16ToFloat(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0) {
    const float v = static_cast<float>(m) * (1.0f / 16777216.0f);  // exact: m * 2^-24
    return sign ? -v : v;
  }
  uint32_t x;
  if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// ---- header -------------------------------------------------------------------

Status ParseSafetensorsHeader(const std::string& file, const std::string& header,
                              uint64_t data_size, std::vector<TensorInfo>* tensors,
                              std::map<std::string, std::string>* metadata) {
  tensors->clear();
  metadata->clear();
  if (header.empty() || header[0] != '{') return Corrupt(file, "header does not start with '{'");
  json j = json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt(file, "header is not a JSON object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return Corrupt(file, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          return Corrupt(file, "__metadata__ value " + Quote(m.key()) + " must be a string");
        }
        (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) return CorruptTensor(file, name, "entry must be an object");
    TensorInfo t;
    t.name = name;
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) return CorruptTensor(file, name, "'dtype' missing");
    auto pd = ParseDType(dt->get<std::string>());
    if (!pd.ok()) return CorruptTensor(file, name, pd.status().message());
    t.dtype = *pd;

    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) return CorruptTensor(file, name, "'shape' missing");
    uint64_t numel = 1;
    for (const json& d : *sh) {
      uint64_t dim;
      // Dimensions above 2^62 cannot describe real data; refusing them keeps
      // every later product inside int64.
      if (!GetU64(d, &dim) || dim > (1ull << 62)) {
        return CorruptTensor(file, name, "shape entries must be non-negative integers");
      }
      if (__builtin_mul_overflow(numel, dim, &numel) || numel > (1ull << 62)) {
        return CorruptTensor(file, name, "shape has too many elements");
      }
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeSize(t.dtype)), &bytes)) {
      return CorruptTensor(file, name, "byte size overflows");
    }

    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !GetU64((*off)[0], &t.begin) ||
        !GetU64((*off)[1], &t.end)) {
      return CorruptTensor(file, name, "'data_offsets' must be [begin, end] non-negative integers");
    }
    if (t.end < t.begin) return CorruptTensor(file, name, "data_offsets end < begin");
    if (t.end > data_size) {
      return CorruptTensor(file, name,
                           "data_offsets [" + std::to_string(t.begin) + ", " +
                               std::to_string(t.end) + ") past the end of the data (" +
                               std::to_string(data_size) + " bytes; file truncated?)");
    }
    if (t.end - t.begin != bytes) {
      return CorruptTensor(file, name,
                           "holds " + std::to_string(t.end - t.begin) + " bytes but " +
                               DTypeName(t.dtype) + " shape needs " + std::to_string(bytes));
    }
    tensors->push_back(std::move(t));
  }

  // The data section must be tiled exactly: tensors back to back from 0 to
  // the end, no overlap, no hole, no trailing bytes (as the reference
  // implementation requires).
  // Names are unique, so (begin, end, name) is a total order and the
  // result (hence which tensor an error names) is deterministic.
  std::sort(tensors->begin(), tensors->end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  uint64_t pos = 0;
  for (const TensorInfo& t : *tensors) {
    if (t.begin < pos) return CorruptTensor(file, t.name, "overlaps the previous tensor");
    if (t.begin > pos) {
      return CorruptTensor(file, t.name,
                           "starts at " + std::to_string(t.begin) + " leaving a hole after byte " +
                               std::to_string(pos));
    }
    pos = t.end;
  }
  if (pos != data_size) {
    return Corrupt(file, "data section is " + std::to_string(data_size) +
                             " bytes but the tensors cover " + std::to_string(pos));
  }
  return Status::Ok();
}

// ---- SafetensorsFile ------------------------------------------------------------

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  HERD_ASSIGN_OR_RETURN(f.map_, MappedFile::Open(path));
  const uint64_t size = f.map_.size();
  if (size < 8) {
    return Corrupt(path, "truncated: " + std::to_string(size) +
                             " bytes, less than the 8-byte header length");
  }

  const auto* bytes = reinterpret_cast<const unsigned char*>(f.map_.data());
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  if (n > kMaxHeaderBytes) {
    return Corrupt(path, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  }
  if (n > size - 8) {
    return Corrupt(path, "truncated: header length " + std::to_string(n) + " but only " +
                             std::to_string(size - 8) + " bytes follow");
  }
  const std::string header(reinterpret_cast<const char*>(bytes + 8), n);
  HERD_RETURN_IF_ERROR(
      ParseSafetensorsHeader(path, header, size - 8 - n, &f.tensors_, &f.metadata_));
  f.data_ = reinterpret_cast<const std::byte*>(bytes + 8 + n);
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  return f;
}


const TensorInfo* SafetensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<const TensorInfo*> SafetensorsFile::FindSized(const std::string& name, int64_t n) const {
  const TensorInfo* t = Find(name);
  if (t == nullptr) return Status::NotFound(path_ + ": tensor " + Quote(name) + " not found");
  if (t->numel() != n) {
    return Status::InvalidArgument(path_ + ": tensor " + Quote(name) + " has " +
                                   std::to_string(t->numel()) + " elements, caller expects " +
                                   std::to_string(n));
  }
  return t;
}

Status SafetensorsFile::ReadF32(const std::string& name, float* out, int64_t n) const {
  HERD_ASSIGN_OR_RETURN(const TensorInfo* t, FindSized(name, n));
  const std::byte* p = Data(*t);
  const auto count = static_cast<size_t>(n);
  switch (t->dtype) {
    case DType::kF32:
      if (count > 0) std::memcpy(out, p, count * 4);
      return Status::Ok();
    case DType::kBF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);  // the data need not be 2-byte aligned
        out[i] = Bf16ToFloat(b);
      }
      return Status::Ok();
    case DType::kF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = F16ToFloat(h);
      }
      return Status::Ok();
    default:
      return Status::InvalidArgument(path_ + ": tensor " + Quote(name) + " has dtype " +
                                     DTypeName(t->dtype) +
                                     "; only F32, BF16 and F16 load as floats");
  }
}

Status SafetensorsFile::ReadI64(const std::string& name, int64_t* out, int64_t n) const {
  HERD_ASSIGN_OR_RETURN(const TensorInfo* t, FindSized(name, n));
  const std::byte* p = Data(*t);
  const auto count = static_cast<size_t>(n);
  if (t->dtype == DType::kI64) {
    if (count > 0) std::memcpy(out, p, count * 8);
    return Status::Ok();
  }
  if (t->dtype == DType::kI32) {
    for (size_t i = 0; i < count; ++i) {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = v;
    }
    return Status::Ok();
  }
  return Status::InvalidArgument(path_ + ": tensor " + Quote(name) + " has dtype " +
                                 DTypeName(t->dtype) + "; only I32 and I64 load as integers");
}

// ---- writer -------------------------------------------------------------------

uint64_t StoredBytes(const TensorSpec& s, DType float_dtype) {
  uint64_t n = 1;
  for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
  return n * DTypeSize(s.raw != nullptr ? s.raw_dtype : float_dtype);
}

Result<SafetensorsWriter> SafetensorsWriter::Create(
    const std::string& path, const std::vector<TensorSpec>& specs, DType float_dtype,
    const std::map<std::string, std::string>& metadata) {
  if (float_dtype != DType::kF32 && float_dtype != DType::kBF16 && float_dtype != DType::kF16) {
    return Status::InvalidArgument(path + ": cannot store floats as " +
                                   std::string(DTypeName(float_dtype)) + " (F32, BF16 or F16)");
  }
  json h = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = m;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const TensorSpec& s : specs) {
    if (s.name.empty() || s.name == "__metadata__") {
      return Status::InvalidArgument(path + ": invalid tensor name " + Quote(s.name));
    }
    if (!seen.insert(s.name).second) {
      return Status::InvalidArgument(path + ": tensor " + Quote(s.name) + " given twice");
    }
    for (int64_t d : s.shape) {
      if (d < 0) return Status::InvalidArgument(path + ": tensor " + Quote(s.name) + " has a negative dimension");
    }
    const DType d = s.raw != nullptr ? s.raw_dtype : float_dtype;
    const uint64_t bytes = StoredBytes(s, float_dtype);
    h[s.name] = {{"dtype", DTypeName(d)}, {"shape", s.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header = h.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference
  // writer does.
  while ((header.size() % 8) != 0) header.push_back(' ');

  SafetensorsWriter w;
  w.path_ = path;
  w.float_dtype_ = float_dtype;
  w.specs_ = specs;
  const std::string partial = path + ".partial";
  w.f_ = std::fopen(partial.c_str(), "wb");
  if (w.f_ == nullptr) return Status::IoError(partial + ": cannot create: " + ErrnoText());
  unsigned char len[8];
  PutU64LE(header.size(), len);
  HERD_RETURN_IF_ERROR(w.Write(len, 8));
  HERD_RETURN_IF_ERROR(w.Write(header.data(), header.size()));
  return w;
}

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& o) noexcept
    : path_(std::move(o.path_)),
      f_(o.f_),
      float_dtype_(o.float_dtype_),
      specs_(std::move(o.specs_)),
      next_(o.next_),
      buf_(std::move(o.buf_)),
      finished_(o.finished_) {
  o.f_ = nullptr;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove((path_ + ".partial").c_str());
  }
}

Status SafetensorsWriter::Write(const void* p, size_t n) {
  if (n == 0) return Status::Ok();
  if (std::fwrite(p, 1, n, f_) != n) return Status::IoError(path_ + ": write: " + ErrnoText());
  return Status::Ok();
}

Status SafetensorsWriter::AppendF32(const float* data, int64_t n) {
  if (f_ == nullptr || next_ >= specs_.size()) {
    return Status::FailedPrecondition(path_ + ": AppendF32 past the last tensor");
  }
  const TensorSpec& s = specs_[next_];
  if (s.raw != nullptr) {
    return Status::InvalidArgument(path_ + ": tensor " + Quote(s.name) + " was declared raw");
  }
  if (n != TensorInfo{"", DType::kF32, s.shape, 0, 0}.numel()) {
    return Status::InvalidArgument(path_ + ": tensor " + Quote(s.name) + ": " +
                                   std::to_string(n) + " values for its shape");
  }
  const auto count = static_cast<size_t>(n);
  if (float_dtype_ == DType::kF32) {
    HERD_RETURN_IF_ERROR(Write(data, count * 4));
  } else {
    // Convert in fixed chunks so memory stays bounded for any tensor size.
    constexpr size_t kChunk = 1 << 16;
    buf_.resize(kChunk);
    for (size_t i = 0; i < count; i += kChunk) {
      const size_t m = std::min(kChunk, count - i);
      if (float_dtype_ == DType::kBF16) {
        for (size_t k = 0; k < m; ++k) buf_[k] = FloatToBf16(data[i + k]);
      } else {
        for (size_t k = 0; k < m; ++k) buf_[k] = FloatToF16(data[i + k]);
      }
      HERD_RETURN_IF_ERROR(Write(buf_.data(), m * 2));  // little-endian host
    }
  }
  ++next_;
  return Status::Ok();
}

Status SafetensorsWriter::AppendRaw(const void* bytes, int64_t n) {
  if (f_ == nullptr || next_ >= specs_.size()) {
    return Status::FailedPrecondition(path_ + ": AppendRaw past the last tensor");
  }
  const TensorSpec& s = specs_[next_];
  if (s.raw == nullptr) {
    return Status::InvalidArgument(path_ + ": tensor " + Quote(s.name) + " was declared float");
  }
  if (static_cast<uint64_t>(n) != StoredBytes(s, float_dtype_) / DTypeSize(s.raw_dtype)) {
    return Status::InvalidArgument(path_ + ": tensor " + Quote(s.name) + ": " +
                                   std::to_string(n) + " elements for its shape");
  }
  HERD_RETURN_IF_ERROR(Write(bytes, StoredBytes(s, float_dtype_)));
  ++next_;
  return Status::Ok();
}

Status SafetensorsWriter::Finish() {
  if (f_ == nullptr) return Status::FailedPrecondition(path_ + ": writer already finished");
  if (next_ != specs_.size()) {
    return Status::FailedPrecondition(path_ + ": " + std::to_string(specs_.size() - next_) +
                                      " tensors not written (next " + Quote(specs_[next_].name) +
                                      ")");
  }
  const std::string partial = path_ + ".partial";
  if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) {
    return Status::IoError(partial + ": flush: " + ErrnoText());
  }
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) {
    std::remove(partial.c_str());
    return Status::IoError(partial + ": close: " + ErrnoText());
  }
  if (std::rename(partial.c_str(), path_.c_str()) != 0) {
    std::remove(partial.c_str());
    return Status::IoError(path_ + ": rename: " + ErrnoText());
  }
  finished_ = true;
  return Status::Ok();
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorSpec>& specs,
                        DType float_dtype, const std::map<std::string, std::string>& metadata) {
  for (const TensorSpec& s : specs) {
    if (s.raw == nullptr && s.f32 == nullptr) {
      return Status::InvalidArgument(path + ": tensor " + Quote(s.name) + " has no data");
    }
  }
  HERD_ASSIGN_OR_RETURN(SafetensorsWriter w,
                        SafetensorsWriter::Create(path, specs, float_dtype, metadata));
  for (const TensorSpec& s : specs) {
    const int64_t n = TensorInfo{"", DType::kF32, s.shape, 0, 0}.numel();
    if (s.raw != nullptr) {
      HERD_RETURN_IF_ERROR(w.AppendRaw(s.raw, n));
    } else {
      HERD_RETURN_IF_ERROR(w.AppendF32(s.f32, n));
    }
  }
  return w.Finish();
}

Status WriteSafetensorsDir(const std::string& dir, const std::vector<TensorSpec>& specs,
                           DType float_dtype, uint64_t max_shard_bytes) {
  // transformers refuses safetensors weights without format metadata.
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  uint64_t total = 0;
  for (const TensorSpec& s : specs) total += StoredBytes(s, float_dtype);
  if (max_shard_bytes == 0 || total <= max_shard_bytes) {
    return WriteSafetensors(dir + "/model.safetensors", specs, float_dtype, meta);
  }
  std::vector<std::vector<TensorSpec>> shards;
  uint64_t in_shard = 0;
  for (const TensorSpec& s : specs) {
    const uint64_t b = StoredBytes(s, float_dtype);
    if (shards.empty() || (in_shard > 0 && in_shard + b > max_shard_bytes)) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(s);
    in_shard += b;
  }
  json weight_map = json::object();
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, n);
    HERD_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + name, shards[i], float_dtype, meta));
    for (const TensorSpec& s : shards[i]) weight_map[s.name] = name;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  // Written and fsynced like the shards: the index is what makes them a set.
  const std::string path = dir + "/model.safetensors.index.json";
  return WriteFileAtomic(path, index.dump(2) + "\n");
}

// ---- SafetensorsSet ---------------------------------------------------------------

Result<SafetensorsSet> SafetensorsSet::Open(const std::string& dir) {
  SafetensorsSet set;
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(single, ec)) {
    HERD_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open(single));
    set.files_.push_back(std::make_unique<SafetensorsFile>(std::move(f)));
    for (const TensorInfo& t : set.files_[0]->tensors()) {
      set.entries_[t.name] = Entry{set.files_[0].get(), &t};
    }
    return set;
  }
  if (!fs::exists(index_path, ec)) {
    return Status::NotFound(dir + ": neither model.safetensors nor model.safetensors.index.json");
  }
  std::ifstream in(index_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt(index_path, "not a JSON object");
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) return Corrupt(index_path, "'weight_map' missing");

  std::map<std::string, SafetensorsFile*> by_file;
  std::map<std::string, std::string> want;  // tensor → shard file
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) {
      return Corrupt(index_path, "weight_map[" + Quote(it.key()) + "] must be a file name");
    }
    const std::string file = it.value().get<std::string>();
    // Shards live beside the index; a path could escape the checkpoint.
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
      return Corrupt(index_path, "weight_map[" + Quote(it.key()) + "] names " + Quote(file) +
                                     ", not a file in the checkpoint directory");
    }
    want[it.key()] = file;
    if (by_file.count(file) == 0) {
      auto f = SafetensorsFile::Open(dir + "/" + file);
      if (!f.ok()) return f.status().WithContext(index_path);
      set.files_.push_back(std::make_unique<SafetensorsFile>(std::move(f).value()));
      by_file[file] = set.files_.back().get();
    }
  }
  for (const auto& [name, file] : want) {
    SafetensorsFile* f = by_file[file];
    const TensorInfo* t = f->Find(name);
    if (t == nullptr) {
      return Corrupt(index_path, "tensor " + Quote(name) + " listed in " + Quote(file) +
                                     " but not found there");
    }
    set.entries_[name] = Entry{f, t};
  }
  for (const auto& [file, f] : by_file) {
    for (const TensorInfo& t : f->tensors()) {
      auto w = want.find(t.name);
      if (w == want.end() || w->second != file) {
        return Corrupt(f->path(), "tensor " + Quote(t.name) + " is not mapped to this shard in " +
                                      index_path);
      }
    }
  }
  return set;
}

const SafetensorsSet::Entry* SafetensorsSet::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Status SafetensorsSet::ReadF32(const std::string& name, float* out, int64_t n) const {
  const Entry* e = Find(name);
  if (e == nullptr) return Status::NotFound("tensor " + Quote(name) + " not in the checkpoint");
  return e->file->ReadF32(name, out, n);
}

}  // namespace herd::model
