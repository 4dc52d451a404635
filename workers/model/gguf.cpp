#include "workers/model/gguf.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

namespace herd::model {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // arrays of arrays; a corrupt file cannot recurse deeper
constexpr int64_t kMaxElements = int64_t{1} << 62;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Bounds-checked little-endian reads over the file image.
class Cursor {
 public:
  Cursor(const std::string& file, const std::byte* p, uint64_t size)
      : file_(file), p_(p), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  Status Truncated(const std::string& what) const {
    return Status::DataLoss(file_ + ": truncated at byte " + std::to_string(pos_) + " (file size " +
                            std::to_string(size_) + ") reading " + what);
  }
  Status Read(void* dst, uint64_t n, const std::string& what) {
    if (n > left()) return Truncated(what);
    std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return Status::Ok();
  }
  template <typename T>
  Result<T> Scalar(const std::string& what) {
    T v{};
    HERD_RETURN_IF_ERROR(Read(&v, sizeof(T), what));  // the host is little-endian (x86-64, arm64)
    return v;
  }
  Result<std::string> String(const std::string& what) {
    HERD_ASSIGN_OR_RETURN(uint64_t n, Scalar<uint64_t>(what + " (length)"));
    if (n > left()) return Truncated(what + " (" + std::to_string(n) + " bytes)");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const std::string& file_;
  const std::byte* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// The smallest encoding of one value of type t (to bound array counts).
uint64_t MinValueBytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kU16:
    case GgufValueType::kI16:
      return 2;
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32:
      return 4;
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
      return 8;
    case GgufValueType::kString:
      return 8;
    case GgufValueType::kArray:
      return 12;
  }
  return 1;
}

bool KnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kF64); }

Status ReadValue(Cursor& c, GgufValueType type, const std::string& what, int depth, GgufValue* v) {
  v->type = type;
  switch (type) {
    case GgufValueType::kU8: {
      HERD_ASSIGN_OR_RETURN(v->u, c.Scalar<uint8_t>(what));
      break;
    }
    case GgufValueType::kI8: {
      HERD_ASSIGN_OR_RETURN(v->i, c.Scalar<int8_t>(what));
      break;
    }
    case GgufValueType::kU16: {
      HERD_ASSIGN_OR_RETURN(v->u, c.Scalar<uint16_t>(what));
      break;
    }
    case GgufValueType::kI16: {
      HERD_ASSIGN_OR_RETURN(v->i, c.Scalar<int16_t>(what));
      break;
    }
    case GgufValueType::kU32: {
      HERD_ASSIGN_OR_RETURN(v->u, c.Scalar<uint32_t>(what));
      break;
    }
    case GgufValueType::kI32: {
      HERD_ASSIGN_OR_RETURN(v->i, c.Scalar<int32_t>(what));
      break;
    }
    case GgufValueType::kU64: {
      HERD_ASSIGN_OR_RETURN(v->u, c.Scalar<uint64_t>(what));
      break;
    }
    case GgufValueType::kI64: {
      HERD_ASSIGN_OR_RETURN(v->i, c.Scalar<int64_t>(what));
      break;
    }
    case GgufValueType::kF32: {
      HERD_ASSIGN_OR_RETURN(v->f, c.Scalar<float>(what));
      break;
    }
    case GgufValueType::kF64: {
      HERD_ASSIGN_OR_RETURN(v->f, c.Scalar<double>(what));
      break;
    }
    case GgufValueType::kBool: {
      HERD_ASSIGN_OR_RETURN(uint8_t b, c.Scalar<uint8_t>(what));
      v->i = b != 0;
      break;
    }
    case GgufValueType::kString: {
      HERD_ASSIGN_OR_RETURN(v->s, c.String(what));
      break;
    }
    case GgufValueType::kArray: {
      if (depth >= kMaxArrayDepth) return Status::DataLoss(what + ": arrays nested too deep");
      HERD_ASSIGN_OR_RETURN(uint32_t et, c.Scalar<uint32_t>(what + " (array type)"));
      if (!KnownValueType(et)) {
        return Status::DataLoss(what + ": unknown array element type " + std::to_string(et));
      }
      v->elem_type = static_cast<GgufValueType>(et);
      HERD_ASSIGN_OR_RETURN(uint64_t n, c.Scalar<uint64_t>(what + " (array length)"));
      if (n > c.left() / MinValueBytes(v->elem_type)) {
        return c.Truncated(what + " (" + std::to_string(n) + " array elements)");
      }
      v->items.resize(n);
      for (uint64_t k = 0; k < n; ++k) {
        HERD_RETURN_IF_ERROR(ReadValue(c, v->elem_type, what, depth + 1, &v->items[k]));
      }
      break;
    }
  }
  return Status::Ok();
}

}  // namespace

const char* GgufValueTypeName(GgufValueType t) {
  static const char* const kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kU16:
    case GgufValueType::kI16:
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kU64:
    case GgufValueType::kI64:
      return true;
    default:
      return false;
  }
}

std::string GgufValue::Describe() const {
  switch (type) {
    case GgufValueType::kU8:
    case GgufValueType::kU16:
    case GgufValueType::kU32:
    case GgufValueType::kU64:
      return std::to_string(u);
    case GgufValueType::kI8:
    case GgufValueType::kI16:
    case GgufValueType::kI32:
    case GgufValueType::kI64:
      return std::to_string(i);
    case GgufValueType::kBool:
      return i ? "true" : "false";
    case GgufValueType::kF32:
    case GgufValueType::kF64: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.9g", f);
      return buf;
    }
    case GgufValueType::kString:
      return s.size() <= 60
                 ? "\"" + s + "\""
                 : "\"" + s.substr(0, 57) + "...\" (" + std::to_string(s.size()) + " bytes)";
    case GgufValueType::kArray: {
      if (items.size() <= 8 && elem_type != GgufValueType::kArray) {
        std::string out = "[";
        for (size_t k = 0; k < items.size(); ++k) out += (k ? ", " : "") + items[k].Describe();
        return out + "]";
      }
      return "[" + std::to_string(items.size()) + " x " + GgufValueTypeName(elem_type) + "]";
    }
  }
  return "?";
}

// ---- file ------------------------------------------------------------------------

Result<GgufFile> GgufFile::Open(const std::string& path) {
  GgufFile f;
  f.path_ = path;
  HERD_ASSIGN_OR_RETURN(f.map_, MappedFile::Open(path));
  if (f.map_.size() < 4) {
    return Status::DataLoss(path + ": truncated: " + std::to_string(f.map_.size()) +
                            " bytes, not even the 4-byte GGUF magic");
  }
  HERD_RETURN_IF_ERROR(f.Parse(f.map_.data(), f.map_.size()));
  return f;
}

Result<GgufFile> GgufFile::FromBytes(const std::string& source, std::string bytes) {
  GgufFile f;
  f.path_ = source;
  f.owned_ = std::move(bytes);
  HERD_RETURN_IF_ERROR(
      f.Parse(reinterpret_cast<const std::byte*>(f.owned_.data()), f.owned_.size()));
  return f;
}

GgufFile::GgufFile(GgufFile&& o) noexcept { *this = std::move(o); }

GgufFile& GgufFile::operator=(GgufFile&& o) noexcept {
  if (this == &o) return *this;
  path_ = std::move(o.path_);
  // A moved std::string may live in a new buffer (small-string storage), so
  // the data pointer is recomputed from the offset rather than copied; a
  // mapping's bytes stay where they are.
  const bool owned = o.map_.data() == nullptr && o.data_ != nullptr;
  map_ = std::move(o.map_);
  owned_ = std::move(o.owned_);
  version_ = o.version_;
  alignment_ = o.alignment_;
  data_offset_ = o.data_offset_;
  data_ = owned ? reinterpret_cast<const std::byte*>(owned_.data()) + data_offset_ : o.data_;
  kv_ = std::move(o.kv_);
  kv_index_ = std::move(o.kv_index_);
  tensors_ = std::move(o.tensors_);
  tensor_index_ = std::move(o.tensor_index_);
  o.data_ = nullptr;
  return *this;
}


Status GgufFile::Parse(const std::byte* p, uint64_t size) {
  Cursor c(path_, p, size);
  HERD_ASSIGN_OR_RETURN(uint32_t magic, c.Scalar<uint32_t>("the magic"));
  if (magic != kMagic) {
    char got[5] = {};
    std::memcpy(got, &magic, 4);
    for (char& ch : got) {
      if (ch != 0 && (ch < 0x20 || ch > 0x7e)) ch = '?';
    }
    return Status::DataLoss(path_ + ": bad magic '" + got + "', not a GGUF file");
  }
  HERD_ASSIGN_OR_RETURN(version_, c.Scalar<uint32_t>("the version"));
  if (version_ != 2 && version_ != 3) {
    // A big-endian file reads as 0x02000000 or 0x03000000 here.
    std::string hint = version_ == 1 ? " (GGUF v1 predates 64-bit counts; re-convert the model)"
                       : (version_ >> 24) != 0 ? " (a big-endian file?)"
                                               : "";
    return Status::DataLoss(path_ + ": unsupported GGUF version " + std::to_string(version_) +
                            hint + "; herd reads versions 2 and 3");
  }
  HERD_ASSIGN_OR_RETURN(uint64_t n_tensors, c.Scalar<uint64_t>("the tensor count"));
  HERD_ASSIGN_OR_RETURN(uint64_t n_kv, c.Scalar<uint64_t>("the metadata count"));
  // Each key-value takes at least 12 bytes (empty key, type, a byte), each
  // tensor info at least 28; so a corrupt count cannot make us allocate.
  if (n_kv > c.left() / 13) return c.Truncated(std::to_string(n_kv) + " metadata entries");
  if (n_tensors > c.left() / 28) return c.Truncated(std::to_string(n_tensors) + " tensor infos");

  kv_.clear();
  kv_index_.clear();
  kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    HERD_ASSIGN_OR_RETURN(std::string key,
                          c.String("the key of metadata entry " + std::to_string(k)));
    const std::string what = "metadata key " + Quote(key);
    if (kv_index_.count(key)) return Status::DataLoss(path_ + ": duplicate " + what);
    HERD_ASSIGN_OR_RETURN(uint32_t type, c.Scalar<uint32_t>("the type of " + what));
    if (!KnownValueType(type)) {
      return Status::DataLoss(path_ + ": " + what + " has unknown value type " +
                              std::to_string(type));
    }
    GgufValue v;
    Status s = ReadValue(c, static_cast<GgufValueType>(type), what, 0, &v);
    if (!s.ok()) {
      // Truncation messages already name the file.
      return s.message().rfind(path_, 0) == 0 ? s : Status::DataLoss(path_ + ": " + s.message());
    }
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }

  alignment_ = 32;
  if (const GgufValue* a = Find("general.alignment")) {
    if (!a->is_integer() || a->u == 0 || a->u > (1u << 30) || (a->u & (a->u - 1)) != 0) {
      return Status::DataLoss(path_ +
                              ": metadata key 'general.alignment' must be a power of two, got " +
                              a->Describe());
    }
    alignment_ = a->u;
  }

  tensors_.clear();
  tensor_index_.clear();
  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    HERD_ASSIGN_OR_RETURN(t.name, c.String("the name of tensor info " + std::to_string(k)));
    const std::string what = "tensor " + Quote(t.name);
    if (tensor_index_.count(t.name)) return Status::DataLoss(path_ + ": duplicate " + what);
    HERD_ASSIGN_OR_RETURN(uint32_t n_dims, c.Scalar<uint32_t>("the rank of " + what));
    if (n_dims < 1 || n_dims > kMaxDims) {
      return Status::DataLoss(path_ + ": " + what + " has " + std::to_string(n_dims) +
                              " dimensions; ggml allows 1 to 4");
    }
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      HERD_ASSIGN_OR_RETURN(uint64_t ne, c.Scalar<uint64_t>("the shape of " + what));
      if (ne > static_cast<uint64_t>(kMaxElements) ||
          (ne != 0 && static_cast<uint64_t>(numel) > static_cast<uint64_t>(kMaxElements) / ne)) {
        return Status::DataLoss(path_ + ": " + what + " has an impossibly large shape");
      }
      numel *= static_cast<int64_t>(ne);
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    HERD_ASSIGN_OR_RETURN(uint32_t type, c.Scalar<uint32_t>("the type of " + what));
    t.type = static_cast<GgmlType>(type);
    int64_t block_elems = 0, block_bytes = 0;
    if (!GgmlBlockLayout(t.type, &block_elems, &block_bytes)) {
      return Status::DataLoss(path_ + ": " + what + " has unknown ggml type " +
                              std::to_string(type));
    }
    if (t.ne[0] % block_elems != 0) {
      return Status::DataLoss(path_ + ": " + what + " has " + std::to_string(t.ne[0]) +
                              " columns, not a multiple of the " + GgmlTypeName(t.type) +
                              " block size " + std::to_string(block_elems));
    }
    t.bytes = static_cast<uint64_t>(numel / block_elems) * static_cast<uint64_t>(block_bytes);
    HERD_ASSIGN_OR_RETURN(t.offset, c.Scalar<uint64_t>("the offset of " + what));
    if (t.offset % alignment_ != 0) {
      return Status::DataLoss(path_ + ": " + what + " offset " + std::to_string(t.offset) +
                              " is not a multiple of the alignment " + std::to_string(alignment_));
    }
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_offset_ > size) {
    return Status::DataLoss(path_ + ": truncated: the data section would start at byte " +
                            std::to_string(data_offset_) + " of a " + std::to_string(size) +
                            "-byte file");
  }
  const uint64_t data_size = size > data_offset_ ? size - data_offset_ : 0;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      return Status::DataLoss(path_ + ": truncated: tensor " + Quote(t.name) + " needs bytes [" +
                              std::to_string(t.offset) + ", " + std::to_string(t.offset + t.bytes) +
                              ") of the data section, which has " + std::to_string(data_size));
    }
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensorInfo& prev = *by_offset[k - 1];
    if (prev.offset + prev.bytes > by_offset[k]->offset) {
      return Status::DataLoss(path_ + ": tensors " + Quote(prev.name) + " and " +
                              Quote(by_offset[k]->name) + " overlap");
    }
  }
  data_ = p + std::min(data_offset_, size);
  return Status::Ok();
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Status Missing(const std::string& file, const std::string& key) {
  return Status::NotFound(file + ": metadata key " + Quote(key) + " missing");
}
Status WrongType(const std::string& file, const std::string& key, const GgufValue& v,
                 const std::string& want) {
  std::string got = GgufValueTypeName(v.type);
  if (v.type == GgufValueType::kArray) got += std::string(" of ") + GgufValueTypeName(v.elem_type);
  return Status::InvalidArgument(file + ": metadata key " + Quote(key) + " must be " + want +
                                 ", got " + got);
}

bool IntOf(const GgufValue& v, int64_t* out) {
  if (!v.is_integer()) return false;
  const bool is_unsigned = v.type == GgufValueType::kU8 || v.type == GgufValueType::kU16 ||
                           v.type == GgufValueType::kU32 || v.type == GgufValueType::kU64;
  if (!is_unsigned) {
    *out = v.i;
    return true;
  }
  if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = static_cast<int64_t>(v.u);
  return true;
}

}  // namespace

Result<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  int64_t out = 0;
  if (!v->is_integer()) return WrongType(path_, key, *v, "an integer");
  if (!IntOf(*v, &out)) {
    return Status::InvalidArgument(path_ + ": metadata key " + Quote(key) + " value " +
                                   v->Describe() + " is out of range");
  }
  return out;
}

Result<double> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->is_float()) return v->f;
  int64_t i = 0;
  if (IntOf(*v, &i)) return static_cast<double>(i);
  return WrongType(path_, key, *v, "a number");
}

Result<bool> GgufFile::GetBool(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kBool) return WrongType(path_, key, *v, "a bool");
  return v->i != 0;
}

Result<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kString) return WrongType(path_, key, *v, "a string");
  return v->s;
}

Result<std::vector<std::string>> GgufFile::GetStringArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kArray || v->elem_type != GgufValueType::kString) {
    return WrongType(path_, key, *v, "an array of string");
  }
  std::vector<std::string> out;
  out.reserve(v->items.size());
  for (const GgufValue& item : v->items) out.push_back(item.s);
  return out;
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kArray) return WrongType(path_, key, *v, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(v->items.size());
  for (size_t k = 0; k < v->items.size(); ++k) {
    int64_t x = 0;
    if (!IntOf(v->items[k], &x)) {
      return Status::InvalidArgument(path_ + ": metadata key " + Quote(key) + " element " +
                                     std::to_string(k) + " is not an integer in range");
    }
    out.push_back(x);
  }
  return out;
}

Status GgufFile::ReadF32(const GgufTensorInfo& t, float* out, int64_t n) const {
  if (n != t.numel()) {
    return Status::InvalidArgument(path_ + ": tensor " + Quote(t.name) + " has " +
                                   std::to_string(t.numel()) + " elements, asked for " +
                                   std::to_string(n));
  }
  if (!CanDequantize(t.type)) {
    return Status::InvalidArgument(
        path_ + ": tensor " + Quote(t.name) + " has type " + GgmlTypeName(t.type) +
        ", which herd cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, "
        "Q5_1, Q4_K, Q5_K, Q6_K)");
  }
  return DequantizeGgml(t.type, Data(t), n, out).WithContext(path_ + ": tensor " + Quote(t.name));
}

}  // namespace herd::model
