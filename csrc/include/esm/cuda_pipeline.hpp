// The flat pipeline on a CUDA device (kernels in csrc/cuda/pipeline.cu): genomes already in
// device memory -> first bad gene and costs, one thread per genome, no host round trip. The
// per-genome code is esm/flat_pipeline.hpp, shared with the CPU twin esm::flat::costs_twin.
#pragma once

#include <cstdint>
#include <vector>

#include "esm/flat_pipeline.hpp"

namespace esm::cuda {

class DevicePipeline {
 public:
  // walk: esm::flat::Walk; config: the space's cost config (for "spec" the compiled program);
  // choices [G]: the genes' numbers of choices; n_slots: the space's slot count.
  DevicePipeline(int32_t walk, const std::vector<int64_t>& config,
                 const std::vector<int32_t>& choices, int n_slots);
  // The whole pipeline of a CPU twin: its cost walk, encoder plan and (when set) linear model.
  explicit DevicePipeline(const flat::FlatPipeline& twin);
  ~DevicePipeline();
  DevicePipeline(const DevicePipeline&) = delete;
  DevicePipeline& operator=(const DevicePipeline&) = delete;

  // Device pointers: genomes int32 [n, G]; totals int64 [n, 4]; slots int64 [n, S, 4] or 0;
  // bad int64 [n] (first bad gene per row, -1 when valid; invalid rows get zero costs).
  void costs(const int32_t* genomes, int64_t n, int64_t* totals, int64_t* slots, int64_t* bad,
             uintptr_t stream) const;
  // X float64 [n, F] (NaN rows for bad genomes); bad int64 [n]. Needs the twin constructor.
  void features(const int32_t* genomes, int64_t n, double* X, int64_t* bad, uintptr_t stream) const;
  // out float64 [n] (NaN for bad genomes); bad int64 [n]; totals int64 [n, 4] (the cost
  // totals of the same walk; zeros for bad genomes) or null. Needs a twin with a linear model.
  void predict_linear(const int32_t* genomes, int64_t n, double* out, int64_t* bad,
                      uintptr_t stream, int64_t* totals = nullptr) const;
  int64_t n_features() const { return plan_.F; }
  bool has_plan() const { return has_plan_; }
  bool has_linear() const { return has_linear_; }
  int64_t n_genes() const { return n_genes_; }
  int n_slots() const { return n_slots_; }
  // Bytes of config + choices staged in shared memory per block (0: read from global memory).
  size_t shared_bytes() const { return shared_bytes_; }

 private:
  int32_t walk_ = 0;
  int64_t n_genes_ = 0, config_words_ = 0;
  int n_slots_ = 0;
  size_t shared_bytes_ = 0;
  int64_t* config_ = nullptr;
  int32_t* choices_ = nullptr;
  bool has_plan_ = false, has_linear_ = false;
  flat::FlatPlan plan_;      // device pointers
  flat::LinearFold linear_;  // device pointers
  std::vector<void*> owned_;
};

}  // namespace esm::cuda
