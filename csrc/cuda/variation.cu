// Device variation kernels: one thread per output genome, draws from esm/variation.hpp.
#include <cuda_runtime.h>

#include <stdexcept>

#include "esm/cuda_variation.hpp"
#include "esm/variation.hpp"
#include "launch.cuh"

namespace esm::cuda {
namespace {

__global__ void sample_kernel(uint64_t seed, const int32_t* __restrict__ choices, int64_t G,
                              int64_t n, int32_t* __restrict__ out) {
  const int64_t i = global_index();
  if (i < n) variation::sample_row(seed, i, choices, G, out + i * G);
}

__global__ void mutate_kernel(uint64_t seed, const int32_t* __restrict__ choices, int64_t G,
                              double rate, const int32_t* __restrict__ in, int64_t n,
                              int32_t* __restrict__ out) {
  const int64_t i = global_index();
  if (i < n) variation::mutate_row(seed, i, choices, G, rate, in + i * G, out + i * G);
}

__global__ void crossover_kernel(uint64_t seed, int64_t G, const int32_t* __restrict__ a,
                                 const int32_t* __restrict__ b, int64_t n,
                                 int32_t* __restrict__ out) {
  const int64_t i = global_index();
  if (i < n) variation::crossover_row(seed, i, G, a + i * G, b + i * G, out + i * G);
}

__global__ void tournament_kernel(uint64_t seed, const double* __restrict__ score, int64_t n_scores,
                                  int32_t size, int64_t n, int64_t* __restrict__ out) {
  const int64_t i = global_index();
  if (i < n) out[i] = variation::tournament_one(seed, i, score, n_scores, size);
}

cudaStream_t as_stream(uintptr_t s) {
  return reinterpret_cast<cudaStream_t>(s);
}

}  // namespace

DeviceVariation::DeviceVariation(const std::vector<int32_t>& choices)
    : n_genes_(static_cast<int64_t>(choices.size())) {
  if (choices.empty()) throw std::invalid_argument("DeviceVariation: no genes");
  for (int32_t c : choices) {
    if (c < 1) throw std::invalid_argument("DeviceVariation: choices must be >= 1");
  }
  void* p = nullptr;
  launch_check(cudaMalloc(&p, choices.size() * sizeof(int32_t)), "cudaMalloc");
  choices_ = static_cast<int32_t*>(p);
  const cudaError_t err = cudaMemcpy(choices_, choices.data(), choices.size() * sizeof(int32_t),
                                     cudaMemcpyHostToDevice);
  if (err != cudaSuccess) {
    cudaFree(choices_);
    launch_check(err, "cudaMemcpy");
  }
}

DeviceVariation::~DeviceVariation() {
  cudaFree(choices_);
}

void DeviceVariation::sample(uint64_t seed, int64_t n, int32_t* out, uintptr_t stream) const {
  if (n <= 0) return;
  sample_kernel<<<pipeline_blocks(n), kPipelineThreads, 0, as_stream(stream)>>>(seed, choices_,
                                                                                n_genes_, n, out);
  launch_check(cudaGetLastError(), "sample_kernel launch");
}

void DeviceVariation::mutate(uint64_t seed, double rate, const int32_t* in, int64_t n, int32_t* out,
                             uintptr_t stream) const {
  if (n <= 0) return;
  mutate_kernel<<<pipeline_blocks(n), kPipelineThreads, 0, as_stream(stream)>>>(
      seed, choices_, n_genes_, rate, in, n, out);
  launch_check(cudaGetLastError(), "mutate_kernel launch");
}

void DeviceVariation::crossover(uint64_t seed, const int32_t* a, const int32_t* b, int64_t n,
                                int32_t* out, uintptr_t stream) const {
  if (n <= 0) return;
  crossover_kernel<<<pipeline_blocks(n), kPipelineThreads, 0, as_stream(stream)>>>(seed, n_genes_,
                                                                                   a, b, n, out);
  launch_check(cudaGetLastError(), "crossover_kernel launch");
}

void DeviceVariation::tournament(uint64_t seed, const double* score, int64_t n_scores, int32_t size,
                                 int64_t n, int64_t* out, uintptr_t stream) const {
  if (n <= 0) return;
  tournament_kernel<<<pipeline_blocks(n), kPipelineThreads, 0, as_stream(stream)>>>(
      seed, score, n_scores, size, n, out);
  launch_check(cudaGetLastError(), "tournament_kernel launch");
}

}  // namespace esm::cuda
