// CUDA toolchain smoke: a kernel, cuBLAS and NCCL linked into every binary.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "kernels/cuda/runtime.h"

namespace herd::cuda {
namespace {

__global__ void saxpy_kernel(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

Status CudaError(const char* what, cudaError_t e) {
  return Status::Internal(std::string(what) + ": " + cudaGetErrorString(e));
}

#define HERD_CUDA_TRY(what, call)              \
  do {                                         \
    cudaError_t _e = (call);                   \
    if (_e != cudaSuccess) return CudaError(what, _e); \
  } while (0)

}  // namespace

int DeviceCount(std::string* why_none) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why_none) *why_none = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    (void)cudaGetLastError();  // clear the sticky error
    return 0;
  }
  if (n == 0 && why_none) *why_none = "cudaGetDeviceCount found 0 devices";
  return n;
}

std::string LinkedLibraryVersions() {
  int nccl = 0;
  ncclGetVersion(&nccl);
  return "cuBLAS " + std::to_string(CUBLAS_VERSION) + " NCCL " + std::to_string(nccl) +
         " CUDA runtime " + std::to_string(CUDART_VERSION);
}

Result<LibraryVersions> GetLibraryVersions() {
  LibraryVersions v;
  v.cublas_header[0] = CUBLAS_VER_MAJOR;
  v.cublas_header[1] = CUBLAS_VER_MINOR;
  v.cublas_header[2] = CUBLAS_VER_PATCH;
  const libraryPropertyType parts[3] = {MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL};
  for (int i = 0; i < 3; ++i) {
    const cublasStatus_t s = cublasGetProperty(parts[i], &v.cublas_linked[i]);
    if (s != CUBLAS_STATUS_SUCCESS) {
      return Status::Internal(std::string("cublasGetProperty: ") + cublasGetStatusString(s));
    }
  }
  v.nccl_header = NCCL_VERSION_CODE;
  const ncclResult_t r = ncclGetVersion(&v.nccl_linked);
  if (r != ncclSuccess) {
    return Status::Internal(std::string("ncclGetVersion: ") + ncclGetErrorString(r));
  }
  v.cudart_header = CUDART_VERSION;
  const cudaError_t e = cudaRuntimeGetVersion(&v.cudart_linked);
  if (e != cudaSuccess) return CudaError("cudaRuntimeGetVersion", e);
  return v;
}

Status Saxpy(int n, float a, const float* x, float* y) {
  std::string why;
  if (DeviceCount(&why) == 0) return Status::Unavailable(why);
  float *dx = nullptr, *dy = nullptr;
  size_t bytes = static_cast<size_t>(n) * sizeof(float);
  HERD_CUDA_TRY("cudaMalloc x", cudaMalloc(&dx, bytes));
  HERD_CUDA_TRY("cudaMalloc y", cudaMalloc(&dy, bytes));
  HERD_CUDA_TRY("copy x", cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice));
  HERD_CUDA_TRY("copy y", cudaMemcpy(dy, y, bytes, cudaMemcpyHostToDevice));
  saxpy_kernel<<<(n + 255) / 256, 256>>>(n, a, dx, dy);
  HERD_CUDA_TRY("saxpy_kernel", cudaGetLastError());
  // Undo with cuBLAS (y -= a*x) and redo with the kernel: exercises both.
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return Status::Internal("cublasCreate failed");
  float minus_a = -a;
  cublasSaxpy(h, n, &minus_a, dx, 1, dy, 1);
  cublasDestroy(h);
  saxpy_kernel<<<(n + 255) / 256, 256>>>(n, a, dx, dy);
  HERD_CUDA_TRY("sync", cudaDeviceSynchronize());
  HERD_CUDA_TRY("copy back", cudaMemcpy(y, dy, bytes, cudaMemcpyDeviceToHost));
  cudaFree(dx);
  cudaFree(dy);
  return Status::Ok();
}

}  // namespace herd::cuda
