// The flat pipeline's CUDA kernels: one thread per genome checks its genes and walks its costs
// with the host/device source of esm/flat_pipeline.hpp. The block stages the space's config
// (the spec program with its cost tables, or NAS-Bench-201's 4 words) and the choice counts in
// shared memory when they fit, else the threads read them through the read-only cache.
#include <cuda_runtime.h>

#include <stdexcept>

#include "esm/cuda_pipeline.hpp"
#include "esm/flat_pipeline.hpp"
#include "launch.cuh"

namespace esm::cuda {
namespace {

constexpr size_t kMaxShared = 48 * 1024;

__global__ void costs_kernel(int32_t walk, const int64_t* __restrict__ config, int64_t words,
                             const int32_t* __restrict__ choices, int64_t G, int n_slots,
                             bool staged, const int32_t* __restrict__ genomes, int64_t n,
                             int64_t* __restrict__ totals, int64_t* __restrict__ slots,
                             int64_t* __restrict__ bad) {
  extern __shared__ int64_t shared[];
  const int64_t* cfg = config;
  const int32_t* ch = choices;
  if (staged) {
    for (int64_t k = threadIdx.x; k < words; k += blockDim.x) shared[k] = config[k];
    int32_t* sch = reinterpret_cast<int32_t*>(shared + words);
    for (int64_t k = threadIdx.x; k < G; k += blockDim.x) sch[k] = choices[k];
    __syncthreads();
    cfg = shared;
    ch = sch;
  }
  const int64_t i = global_index();
  if (i >= n) return;
  constexpr int64_t F = Accumulator::kFields;
  const int32_t* g = genomes + i * G;
  int64_t t[F] = {0, 0, 0, 0};
  int64_t* s = slots ? slots + i * n_slots * F : nullptr;
  if (s) {
    for (int64_t k = 0; k < n_slots * F; ++k) s[k] = 0;
  }
  const int64_t b = flat::first_bad_gene(g, ch, G);
  bad[i] = b;
  if (b < 0) flat::costs_one(walk, cfg, g, t, s, n_slots);
  for (int64_t f = 0; f < F; ++f) totals[i * F + f] = t[f];
}

template <class T>
T* upload(const std::vector<T>& host) {
  if (host.empty()) return nullptr;
  void* p = nullptr;
  launch_check(cudaMalloc(&p, host.size() * sizeof(T)), "cudaMalloc");
  const cudaError_t err =
      cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  if (err != cudaSuccess) {
    cudaFree(p);
    launch_check(err, "cudaMemcpy");
  }
  return static_cast<T*>(p);
}

}  // namespace

DevicePipeline::DevicePipeline(int32_t walk, const std::vector<int64_t>& config,
                               const std::vector<int32_t>& choices, int n_slots)
    : walk_(walk),
      n_genes_(static_cast<int64_t>(choices.size())),
      config_words_(static_cast<int64_t>(config.size())),
      n_slots_(n_slots) {
  const size_t bytes = config.size() * sizeof(int64_t) + choices.size() * sizeof(int32_t);
  shared_bytes_ = bytes <= kMaxShared ? bytes : 0;
  config_ = upload(config);
  try {
    choices_ = upload(choices);
  } catch (...) {
    cudaFree(config_);
    throw;
  }
}

DevicePipeline::~DevicePipeline() {
  cudaFree(config_);
  cudaFree(choices_);
}

void DevicePipeline::costs(const int32_t* genomes, int64_t n, int64_t* totals, int64_t* slots,
                           int64_t* bad, uintptr_t stream) const {
  if (n <= 0) return;
  costs_kernel<<<pipeline_blocks(n), kPipelineThreads, shared_bytes_,
                 reinterpret_cast<cudaStream_t>(stream)>>>(walk_, config_, config_words_, choices_,
                                                           n_genes_, n_slots_, shared_bytes_ > 0,
                                                           genomes, n, totals, slots, bad);
  launch_check(cudaGetLastError(), "costs_kernel launch");
}

}  // namespace esm::cuda
