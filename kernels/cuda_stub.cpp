// Built only without CUDA: the same interface, reporting its absence.
#include "kernels/cuda/runtime.h"

namespace herd::cuda {

int DeviceCount(std::string* why_none) {
  if (why_none) *why_none = "herd was built without CUDA (-DHERD_CUDA=OFF or no nvcc)";
  return 0;
}
std::string LinkedLibraryVersions() { return "none (built without CUDA)"; }
Result<LibraryVersions> GetLibraryVersions() {
  return Status::Unavailable("herd was built without CUDA");
}
Status Saxpy(int, float, const float*, float*) {
  return Status::Unavailable("herd was built without CUDA");
}

}  // namespace herd::cuda
