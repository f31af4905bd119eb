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

// Features of one genome per thread; the plan's arrays are read through the read-only cache.
__global__ void features_kernel(int32_t walk, const int64_t* __restrict__ config, flat::FlatPlan p,
                                const int32_t* __restrict__ genomes, int64_t n,
                                double* __restrict__ X, int64_t* __restrict__ bad) {
  const int64_t i = global_index();
  if (i >= n) return;
  constexpr int64_t F = Accumulator::kFields;
  const int32_t* g = genomes + i * p.G;
  double* x = X + i * p.F;
  const int64_t b = flat::first_bad_gene(g, p.choices, p.G);
  bad[i] = b;
  if (b >= 0) {
    for (int64_t j = 0; j < p.F; ++j) x[j] = spec::bits_to_double(0x7ff8000000000000LL);
    return;
  }
  int64_t tot[F] = {0, 0, 0, 0};
  int64_t sl[flat::kMaxSlots * F];
  for (int64_t k = 0; k < p.S * F; ++k) sl[k] = 0;
  flat::costs_one(walk, config, g, tot, sl, static_cast<int>(p.S));
  flat::encode_row(p, g, tot, sl, [x](int64_t j, double v) { x[j] = v; });
}

// Genomes -> costs -> encode with the linear model folded in: one prediction per thread, no
// feature row in memory; the cost totals of the same walk too when `totals` is not null.
__global__ void linear_kernel(int32_t walk, const int64_t* __restrict__ config, flat::FlatPlan p,
                              flat::LinearFold lin, const int32_t* __restrict__ genomes, int64_t n,
                              double* __restrict__ out, int64_t* __restrict__ bad,
                              int64_t* __restrict__ totals) {
  const int64_t i = global_index();
  if (i >= n) return;
  int64_t sl[flat::kMaxSlots * Accumulator::kFields];
  out[i] = flat::predict_linear_one(walk, config, p, lin, genomes + i * p.G, bad + i, sl,
                                    totals ? totals + i * Accumulator::kFields : nullptr);
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

DevicePipeline::DevicePipeline(const flat::FlatPipeline& twin)
    : DevicePipeline(twin.walk(), twin.config(), twin.plan().choices,
                     static_cast<int>(twin.plan().S)) {
  const flat::FlatPlanData& d = twin.plan();
  auto up = [this](const auto& v) {
    auto* p = upload(v);
    owned_.push_back(p);
    return p;
  };
  plan_.G = d.G;
  plan_.S = d.S;
  plan_.F = d.F;
  plan_.choices = choices_;
  plan_.slot_gene = up(d.slot_gene);
  plan_.slot_active = up(d.slot_active);
  plan_.max_choice = d.max_choice;
  plan_.pixel_gene = d.pixel_gene;
  plan_.pixel_table = up(d.pixel_table);
  plan_.n_ops = static_cast<int32_t>(d.op_kind.size());
  plan_.op_kind = up(d.op_kind);
  plan_.op_start = up(d.op_start);
  plan_.op_count = up(d.op_count);
  plan_.op_stages = up(d.op_stages);
  plan_.ints = up(d.ints);
  plan_.reals = up(d.reals);
  has_plan_ = true;
  if (const flat::LinearData* l = twin.linear()) {
    linear_.coef = up(l->coef);
    linear_.mean = up(l->mean);
    linear_.scale = up(l->scale);
    linear_.intercept = l->intercept;
    linear_.log_target = l->log_target;
    has_linear_ = true;
  }
}

DevicePipeline::~DevicePipeline() {
  cudaFree(config_);
  cudaFree(choices_);
  for (void* p : owned_) cudaFree(p);
}

void DevicePipeline::features(const int32_t* genomes, int64_t n, double* X, int64_t* bad,
                              uintptr_t stream) const {
  if (!has_plan_) throw std::invalid_argument("DevicePipeline: no encoder plan");
  if (n <= 0) return;
  features_kernel<<<pipeline_blocks(n), kPipelineThreads, 0,
                    reinterpret_cast<cudaStream_t>(stream)>>>(walk_, config_, plan_, genomes, n, X,
                                                              bad);
  launch_check(cudaGetLastError(), "features_kernel launch");
}

void DevicePipeline::predict_linear(const int32_t* genomes, int64_t n, double* out, int64_t* bad,
                                    uintptr_t stream, int64_t* totals) const {
  if (!has_linear_) throw std::invalid_argument("DevicePipeline: no linear model");
  if (n <= 0) return;
  linear_kernel<<<pipeline_blocks(n), kPipelineThreads, 0,
                  reinterpret_cast<cudaStream_t>(stream)>>>(walk_, config_, plan_, linear_, genomes,
                                                            n, out, bad, totals);
  launch_check(cudaGetLastError(), "linear_kernel launch");
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
