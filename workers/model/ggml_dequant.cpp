// ggml tensor types and their dequantization to fp32 (declared in gguf.h).
//
// Block layouts are ggml's (ggml-common.h); every formula is evaluated in
// float32 in the order ggml's dequantize_row_* and gguf-py's
// gguf.quants.dequantize use, so results are bit-identical to both. This file
// is compiled with -ffp-contract=off (workers/CMakeLists.txt): a fused
// multiply-add in `d * q + m` would round once instead of twice and differ
// in the last bit.
#include <cstring>

#include "workers/model/gguf.h"
#include "workers/model/safetensors.h"

namespace herd::model {
namespace {

struct TypeRow {
  GgmlType type;
  const char* name;
  int64_t block_elems;
  int64_t block_bytes;
};

constexpr int64_t kQK = 32;     // elements per block of the legacy quants
constexpr int64_t kQK_K = 256;  // elements per super-block of the K-quants

constexpr TypeRow kTypes[] = {
    {GgmlType::kF32, "F32", 1, 4},
    {GgmlType::kF16, "F16", 1, 2},
    {GgmlType::kQ4_0, "Q4_0", kQK, 2 + 16},
    {GgmlType::kQ4_1, "Q4_1", kQK, 2 + 2 + 16},
    {GgmlType::kQ5_0, "Q5_0", kQK, 2 + 4 + 16},
    {GgmlType::kQ5_1, "Q5_1", kQK, 2 + 2 + 4 + 16},
    {GgmlType::kQ8_0, "Q8_0", kQK, 2 + 32},
    {GgmlType::kQ8_1, "Q8_1", kQK, 2 + 2 + 32},
    {GgmlType::kQ2_K, "Q2_K", kQK_K, kQK_K / 16 + kQK_K / 4 + 2 + 2},
    {GgmlType::kQ3_K, "Q3_K", kQK_K, kQK_K / 8 + kQK_K / 4 + 12 + 2},
    {GgmlType::kQ4_K, "Q4_K", kQK_K, 2 + 2 + 12 + kQK_K / 2},
    {GgmlType::kQ5_K, "Q5_K", kQK_K, 2 + 2 + 12 + kQK_K / 8 + kQK_K / 2},
    {GgmlType::kQ6_K, "Q6_K", kQK_K, kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2},
    {GgmlType::kQ8_K, "Q8_K", kQK_K, 4 + kQK_K + kQK_K / 16 * 2},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", kQK_K, 2 + kQK_K / 4},
    {GgmlType::kIQ2_XS, "IQ2_XS", kQK_K, 2 + kQK_K / 4 + kQK_K / 32},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", kQK_K, 2 + kQK_K / 4 + kQK_K / 8},
    {GgmlType::kIQ1_S, "IQ1_S", kQK_K, 2 + kQK_K / 8 + kQK_K / 16},
    {GgmlType::kIQ4_NL, "IQ4_NL", kQK, 2 + 16},
    {GgmlType::kIQ3_S, "IQ3_S", kQK_K, 2 + kQK_K / 4 + kQK_K / 8 + kQK_K / 32 + 4},
    {GgmlType::kIQ2_S, "IQ2_S", kQK_K, 2 + kQK_K / 4 + kQK_K / 16},
    {GgmlType::kIQ4_XS, "IQ4_XS", kQK_K, 2 + 2 + kQK_K / 2 + kQK_K / 64},
    {GgmlType::kI8, "I8", 1, 1},
    {GgmlType::kI16, "I16", 1, 2},
    {GgmlType::kI32, "I32", 1, 4},
    {GgmlType::kI64, "I64", 1, 8},
    {GgmlType::kF64, "F64", 1, 8},
    {GgmlType::kIQ1_M, "IQ1_M", kQK_K, kQK_K / 8 + kQK_K / 16 + kQK_K / 32},
    {GgmlType::kBF16, "BF16", 1, 2},
    {GgmlType::kTQ1_0, "TQ1_0", kQK_K, 2 + 4 * 13},
    {GgmlType::kTQ2_0, "TQ2_0", kQK_K, 2 + 64},
    {GgmlType::kMXFP4, "MXFP4", kQK, 1 + 16},
};

const TypeRow* Row(GgmlType t) {
  for (const TypeRow& r : kTypes) {
    if (r.type == t) return &r;
  }
  return nullptr;
}

uint16_t U16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float Half(const uint8_t* p) { return F16ToFloat(U16(p)); }

// Legacy quants: 32 elements per block; element j < 16 is the low nibble of
// qs[j], element j >= 16 the high nibble of qs[j - 16].

void DequantQ4_0(const uint8_t* b, int64_t nb, float* y) {  // d, qs[16]: x = (q - 8) * d
  for (int64_t i = 0; i < nb; ++i, b += 18, y += kQK) {
    const float d = Half(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantQ4_1(const uint8_t* b, int64_t nb, float* y) {  // d, m, qs[16]: x = q * d + m
  for (int64_t i = 0; i < nb; ++i, b += 20, y += kQK) {
    const float d = Half(b), m = Half(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// Q5: the fifth bit of element j is bit j of the little-endian u32 qh.
void DequantQ5_0(const uint8_t* b, int64_t nb, float* y) {  // d, qh, qs[16]: x = (q - 16) * d
  for (int64_t i = 0; i < nb; ++i, b += 22, y += kQK) {
    const float d = Half(b);
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const uint8_t* qs = b + 6;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

void DequantQ5_1(const uint8_t* b, int64_t nb, float* y) {  // d, m, qh, qs[16]: x = q * d + m
  for (int64_t i = 0; i < nb; ++i, b += 24, y += kQK) {
    const float d = Half(b), m = Half(b + 2);
    uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo) * d + m;
      y[j + 16] = static_cast<float>(hi) * d + m;
    }
  }
}

void DequantQ8_0(const uint8_t* b, int64_t nb, float* y) {  // d, int8 qs[32]: x = q * d
  for (int64_t i = 0; i < nb; ++i, b += 34, y += kQK) {
    const float d = Half(b);
    const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
  }
}

// K-quants: a 256-element super-block of 8 sub-blocks of 32 (Q4_K, Q5_K) or
// 16 of 16 (Q6_K). Q4_K/Q5_K pack eight 6-bit scales and eight 6-bit mins
// into 12 bytes: sub-block j < 4 takes the low 6 bits of bytes j (scale)
// and j + 4 (min); j >= 4 takes the nibbles of byte j + 4 plus the top two
// bits of bytes j - 4 (scale) and j (min).
void ScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// d, dmin, scales[12], qs[128]: 64 elements per 32 bytes of qs, low nibbles
// first. x = (d * sc) * q - (dmin * m).
void DequantQ4_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 144) {
    const float d = Half(b), dmin = Half(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* q = b + 16;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t sc, m;
      ScaleMinK4(j, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      ScaleMinK4(j + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// d, dmin, scales[12], qh[32], qs[128]: as Q4_K, and bit k of qh[l] is the
// fifth bit of element 32k + l.
void DequantQ5_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 176) {
    const float d = Half(b), dmin = Half(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* ql = b + 48;
    for (int j = 0; j < 8; j += 2, ql += 32) {
      uint8_t sc, m;
      ScaleMinK4(j, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      ScaleMinK4(j + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] & 0x0F) | (((qh[l] >> j) & 1) << 4);
        *y++ = d1 * static_cast<float>(q) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] >> 4) | (((qh[l] >> (j + 1)) & 1) << 4);
        *y++ = d2 * static_cast<float>(q) - m2;
      }
    }
  }
}

// ql[128], qh[64], int8 scales[16], d: two halves of 128 elements. In half
// h, element e < 64 has its low 4 bits in the low nibble of ql[64h + e] and
// element e >= 64 in the high nibble of ql[64h + e - 64]; element 32k + l
// has its top 2 bits in bits 2k, 2k+1 of qh[32h + l].
// x = (d * scales[e / 16]) * (q - 32).
void DequantQ6_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 210, y += kQK_K) {
    const float d = Half(b + 208);
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b + 64 * h;
      const uint8_t* qh = b + 128 + 32 * h;
      float* yh = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        // Elements l, l+32 (low nibbles of ql[l], ql[l+32]) and l+64, l+96
        // (their high nibbles).
        const int q[4] = {(ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4),
                          (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4),
                          (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                          (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)};
        for (int k = 0; k < 4; ++k) {
          const int e = 32 * k + l;
          const float dl = d * static_cast<float>(scales[(128 * h + e) / 16]);
          yh[e] = dl * static_cast<float>(q[k] - 32);
        }
      }
    }
  }
}

}  // namespace

const char* GgmlTypeName(GgmlType t) {
  const TypeRow* r = Row(t);
  return r ? r->name : nullptr;
}

bool GgmlBlockLayout(GgmlType t, int64_t* block_elems, int64_t* block_bytes) {
  const TypeRow* r = Row(t);
  if (!r) return false;
  *block_elems = r->block_elems;
  *block_bytes = r->block_bytes;
  return true;
}

bool CanDequantize(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

Status DequantizeGgml(GgmlType t, const std::byte* src, int64_t n, float* out) {
  const TypeRow* r = Row(t);
  if (!r || !CanDequantize(t)) {
    const char* name = r ? r->name : "unknown";
    return Status::InvalidArgument(std::string("cannot dequantize ggml type ") + name);
  }
  if (n < 0 || n % r->block_elems != 0) {
    return Status::InvalidArgument(std::to_string(n) + " elements is not a whole number of " +
                                   r->name + " blocks of " + std::to_string(r->block_elems));
  }
  const auto* b = reinterpret_cast<const uint8_t*>(src);
  const int64_t nb = n / r->block_elems;
  switch (t) {
    case GgmlType::kF32:
      std::memcpy(out, b, static_cast<size_t>(n) * 4);
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) out[i] = Half(b + 2 * i);
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) out[i] = Bf16ToFloat(U16(b + 2 * i));
      break;
    case GgmlType::kQ4_0:
      DequantQ4_0(b, nb, out);
      break;
    case GgmlType::kQ4_1:
      DequantQ4_1(b, nb, out);
      break;
    case GgmlType::kQ5_0:
      DequantQ5_0(b, nb, out);
      break;
    case GgmlType::kQ5_1:
      DequantQ5_1(b, nb, out);
      break;
    case GgmlType::kQ8_0:
      DequantQ8_0(b, nb, out);
      break;
    case GgmlType::kQ4_K:
      DequantQ4_K(b, nb, out);
      break;
    case GgmlType::kQ5_K:
      DequantQ5_K(b, nb, out);
      break;
    case GgmlType::kQ6_K:
      DequantQ6_K(b, nb, out);
      break;
    default:
      break;
  }
  return Status::Ok();
}

}  // namespace herd::model
