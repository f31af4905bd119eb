// Compiled surrogate models on a CUDA device (plain C++ interface; kernels in
// csrc/cuda/predict.cu). Families on the device: linear (also the LUT: a linear model over
// one-hot features, evaluated straight from genomes) and tree ensembles. Inputs and outputs
// are device pointers; the caller owns them. All work is queued on `stream` (0 = default).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "esm/predict.hpp"

namespace esm::cuda {

class DeviceModel {
 public:
  virtual ~DeviceModel() = default;
  virtual int64_t n_features() const = 0;
  // out[i] = prediction for raw feature row X[i] (float64 [n, F] row-major, device memory).
  virtual void predict(const double* X, int64_t n, double* out, uintptr_t stream) const = 0;
};

// Linear: standardisation, coef, intercept and target as in esm::predict.
std::unique_ptr<DeviceModel> device_linear(const predict::Common& c,
                                           const std::vector<double>& coef, double intercept);
// Trees: the compact layout of esm::predict::compact_trees.
std::unique_ptr<DeviceModel> device_trees(const predict::Common& c, const predict::CompactTrees& t);

// Linear model over one-hot genes: y = bias + sum over active genes of table[offset[g] +
// genome[g]]; gene g is active when gene_slot[g] < 0 or its slot is active (slot_gene,
// slot_active, max_choice as in esm::predict::EncodePlan). Genomes are int32 [n, G] on the
// device and must already be validated.
class DeviceLut {
 public:
  DeviceLut(const std::vector<double>& table, const std::vector<int64_t>& offset,
            const std::vector<int32_t>& gene_slot, const std::vector<int32_t>& slot_gene,
            const std::vector<uint8_t>& slot_active, int32_t max_choice, double bias,
            bool log_target);
  ~DeviceLut();
  DeviceLut(const DeviceLut&) = delete;
  DeviceLut& operator=(const DeviceLut&) = delete;
  void predict(const int32_t* genomes, int64_t n, double* out, uintptr_t stream) const;
  int64_t n_genes() const { return n_genes_; }

 private:
  int64_t n_genes_ = 0, n_slots_ = 0;
  int32_t max_choice_ = 0;
  double bias_ = 0.0;
  bool log_ = false;
  double* table_ = nullptr;
  int64_t* offset_ = nullptr;
  int32_t* gene_slot_ = nullptr;
  int32_t* slot_gene_ = nullptr;
  uint8_t* slot_active_ = nullptr;
};

// Device memory helpers for the bindings (throw std::runtime_error on CUDA errors).
void* device_alloc(size_t bytes);
void device_free(void* p);
void copy_to_device(void* dst, const void* src, size_t bytes, uintptr_t stream);
void copy_to_host(void* dst, const void* src, size_t bytes, uintptr_t stream);
void synchronize(uintptr_t stream);

}  // namespace esm::cuda
