// Launch helpers shared by the CUDA kernels of the flat pipeline.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace esm::cuda {

constexpr int kPipelineThreads = 128;

inline unsigned pipeline_blocks(int64_t n) {
  return static_cast<unsigned>((n + kPipelineThreads - 1) / kPipelineThreads);
}

inline void launch_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
  }
}

// Global thread index as int64 (grids of more than 2^31 threads).
__device__ inline int64_t global_index() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}

}  // namespace esm::cuda
