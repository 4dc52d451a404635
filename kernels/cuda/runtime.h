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

// Library versions twice over: what the headers said when kernels/cuda was
// compiled, and what the libraries loaded at run time report. Equal pairs
// mean the binary runs against the libraries it was built for. Needs no
// device.
struct LibraryVersions {
  int cublas_header[3] = {0, 0, 0};  // CUBLAS_VER_MAJOR, _MINOR, _PATCH
  int cublas_linked[3] = {0, 0, 0};  // cublasGetProperty(MAJOR_VERSION, ...)
  int nccl_header = 0;               // NCCL_VERSION_CODE
  int nccl_linked = 0;               // ncclGetVersion
  int cudart_header = 0;             // CUDART_VERSION
  int cudart_linked = 0;             // cudaRuntimeGetVersion
};
// Internal naming the call when a library refuses to answer; Unavailable in
// a build without CUDA.
Result<LibraryVersions> GetLibraryVersions();

// Smoke test of the toolchain: y[i] = a*x[i] + y[i] on device 0 through a
// hand-written kernel, then checked with cublasSaxpy. n elements, host
// pointers. Unavailable when there is no device.
Status Saxpy(int n, float a, const float* x, float* y);

}  // namespace herd::cuda
