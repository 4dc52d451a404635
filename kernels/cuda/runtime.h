#pragma once
// Host-side view of the CUDA backend. Declared for every build; in a build
// without CUDA (-DHERD_CUDA=OFF or no nvcc) every call reports that.
#include <string>

#include "common/status.h"

namespace herd::cuda {

// Number of usable CUDA devices. 0 when there is none; *why_none then says
// why ("built without CUDA", "cudaGetDeviceCount: driver version is
// insufficient ...", ...). Any CUDA error here counts as "no device".
int DeviceCount(std::string* why_none);

// Versions the binary was linked against, e.g. "cuBLAS 130000 NCCL 22800".
std::string LinkedLibraryVersions();

// Smoke test of the toolchain: y[i] = a*x[i] + y[i] on device 0 through a
// hand-written kernel, then checked with cublasSaxpy. n elements, host
// pointers. Unavailable when there is no device.
Status Saxpy(int n, float a, const float* x, float* y);

}  // namespace herd::cuda
