#pragma once
// Rotary position embedding in the HF `rotate_half` convention: a head
// vector x(hd) is split into halves x1 = x[0:hd/2], x2 = x[hd/2:hd] and
//     out1 = x1*cos - x2*sin,   out2 = x2*cos + x1*sin,
// with cos/sin(k) = cos/sin(pos * inv_freq[k]) for k < hd/2 (the same angle
// for k and k + hd/2, as HF's cat(freqs, freqs)).
#include <cstdint>

namespace herd::kernels::cpu {

// Llama 3.1 "llama3" rope_scaling (HF _compute_llama3_parameters).
struct Llama3RopeScaling {
  double factor = 8.0;                             // Default: 8
  double low_freq_factor = 1.0;                    // Default: 1
  double high_freq_factor = 4.0;                   // Default: 4
  double original_max_position_embeddings = 8192;  // Default: 8192
};

// inv_freq(hd/2)[k] = theta^(-2k/hd), then, when scaling is given, with
// wavelen = 2*pi/inv_freq: wavelen > old/low  -> inv_freq/factor;
// wavelen < old/high -> unchanged; in between the smooth ramp
// (1-s)*inv_freq/factor + s*inv_freq, s = (old/wavelen - low)/(high - low).
void RopeInvFreq(double* inv_freq, int64_t head_dim, double theta,
                 const Llama3RopeScaling* scaling);

// cos(N, hd/2), sin(N, hd/2) for positions(N); angles computed in float64.
void RopeTables(float* cos, float* sin, const int32_t* positions, int64_t N, const double* inv_freq,
                int64_t half);

// Rotates n_heads consecutive head vectors of each of N rows in place.
// x row n starts at x + n*ld; head h at + h*hd.  cos/sin (N, hd/2).
void RopeForward(float* x, int64_t N, int64_t n_heads, int64_t hd, int64_t ld, const float* cos,
                 const float* sin);

// The transpose (inverse) rotation, in place on the gradient dx.
void RopeBackward(float* dx, int64_t N, int64_t n_heads, int64_t hd, int64_t ld, const float* cos,
                  const float* sin);

}  // namespace herd::kernels::cpu
