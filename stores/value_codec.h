#pragma once
// The value encoding (docs/store.md "Values"), one for every family:
//
//   value   = version:u8  fields*  crc32c:u32le
//   field   = tag:varint  payload      tag = field_number << 3 | wire_type
//   wire 0  = varint (unsigned; signed ints zigzag-encoded)
//   wire 1  = 8 bytes little-endian (double)
//   wire 2  = varint length + bytes (strings, packed arrays, nested records)
//
// crc32c covers the version byte and the fields. Readers skip unknown field
// numbers and default missing ones, so fields can be added without a
// migration; changing a field's meaning needs a new number. A nested record
// (Message, StageStatus) is `fields*` without version or crc.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "stores/records.h"

namespace herd::stores {

inline constexpr uint8_t kValueVersion = 1;

class FieldWriter {
 public:
  explicit FieldWriter(std::string* out) : out_(out) {}
  void Varint(uint32_t field, uint64_t v);
  void Signed(uint32_t field, int64_t v) { Varint(field, (uint64_t(v) << 1) ^ uint64_t(v >> 63)); }
  void Double(uint32_t field, double v);
  void Bytes(uint32_t field, std::string_view v);
  // Tag and length only; the caller appends exactly `len` bytes next.
  void BytesHeader(uint32_t field, size_t len);
  // Skips empty strings and zero numbers: absent reads back as the default.
  void BytesIfAny(uint32_t field, std::string_view v) {
    if (!v.empty()) Bytes(field, v);
  }
  void VarintIfAny(uint32_t field, uint64_t v) {
    if (v != 0) Varint(field, v);
  }
  void SignedIfAny(uint32_t field, int64_t v) {
    if (v != 0) Signed(field, v);
  }
  std::string* out() { return out_; }

 private:
  void RawVarint(uint64_t v);
  std::string* out_;
};

class FieldReader {
 public:
  explicit FieldReader(std::string_view fields) : p_(fields) {}
  // Next field; false at the end or on malformed input (then ok() is false).
  bool Next();
  bool ok() const { return ok_; }
  uint32_t field() const { return field_; }
  uint32_t wire() const { return wire_; }
  // Typed accessors; a wire-type mismatch marks the reader failed.
  uint64_t AsVarint();
  int64_t AsSigned() {
    uint64_t u = AsVarint();
    return int64_t(u >> 1) ^ -int64_t(u & 1);
  }
  double AsDouble();
  std::string_view AsBytes();
  std::string error() const { return error_; }
  void Fail(std::string why) {
    if (ok_) error_ = std::move(why);
    ok_ = false;
  }

 private:
  bool ReadVarint(uint64_t* v);
  std::string_view p_;
  uint32_t field_ = 0, wire_ = 0;
  uint64_t varint_ = 0;
  double double_ = 0;
  std::string_view bytes_;
  bool ok_ = true;
  std::string error_;
};

// Frame helpers: Begin writes the version byte, Seal appends the crc.
void BeginValue(std::string* out);
void SealValue(std::string* out);
// Checks crc and version; on success *fields is the field section.
Status OpenValue(std::string_view value, std::string_view* fields);

// Record codecs. Encode clears *out first. Decode errors are DataLoss with a
// reason; the store adds family and key.
void Encode(const Run& r, std::string* out);
void Encode(const Round& r, std::string* out);
void Encode(const Task& r, std::string* out);
void Encode(const Worker& r, std::string* out);
void Encode(const Prompt& r, std::string* out);
void Encode(const Sample& r, std::string* out);
void Encode(const Annotation& r, std::string* out);
void Encode(const AnnotationRequest& r, std::string* out);
void Encode(const Pair& r, std::string* out);
void Encode(const Checkpoint& r, std::string* out);
void Encode(const Event& r, std::string* out);
void Encode(const IdempotencyRecord& r, std::string* out);
void Encode(const DatasetMember& r, std::string* out);
Status Decode(std::string_view v, Run* r);
Status Decode(std::string_view v, Round* r);
Status Decode(std::string_view v, Task* r);
Status Decode(std::string_view v, Worker* r);
Status Decode(std::string_view v, Prompt* r);
Status Decode(std::string_view v, Sample* r);
Status Decode(std::string_view v, Annotation* r);
Status Decode(std::string_view v, AnnotationRequest* r);
Status Decode(std::string_view v, Pair* r);
Status Decode(std::string_view v, Checkpoint* r);
Status Decode(std::string_view v, Event* r);
Status Decode(std::string_view v, IdempotencyRecord* r);
Status Decode(std::string_view v, DatasetMember* r);

// Packed little-endian int32 token ids (4 bytes each).
void PackTokens(const std::vector<int32_t>& t, std::string* out);
bool UnpackTokens(std::string_view b, std::vector<int32_t>* t);

}  // namespace herd::stores
