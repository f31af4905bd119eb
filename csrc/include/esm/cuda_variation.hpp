// Counter-based variation on a CUDA device (kernels in csrc/cuda/variation.cu): one thread per
// genome, the per-row source of esm/variation.hpp, so the CPU twins give the same genomes.
// All pointers are device memory; work is queued on `stream`.
#pragma once

#include <cstdint>
#include <vector>

namespace esm::cuda {

class DeviceVariation {
 public:
  explicit DeviceVariation(const std::vector<int32_t>& choices);
  ~DeviceVariation();
  DeviceVariation(const DeviceVariation&) = delete;
  DeviceVariation& operator=(const DeviceVariation&) = delete;

  void sample(uint64_t seed, int64_t n, int32_t* out, uintptr_t stream) const;
  void mutate(uint64_t seed, double rate, const int32_t* in, int64_t n, int32_t* out,
              uintptr_t stream) const;
  void crossover(uint64_t seed, const int32_t* a, const int32_t* b, int64_t n, int32_t* out,
                 uintptr_t stream) const;
  void tournament(uint64_t seed, const double* score, int64_t n_scores, int32_t size, int64_t n,
                  int64_t* out, uintptr_t stream) const;
  int64_t n_genes() const { return n_genes_; }

 private:
  int64_t n_genes_ = 0;
  int32_t* choices_ = nullptr;
};

}  // namespace esm::cuda
