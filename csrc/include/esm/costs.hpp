// Batched architecture costs: MACs, parameters, activation and weight bytes per genome and
// per searchable slot. A cost kernel walks one genome's macro-architecture and reports its
// layers to an Accumulator: the generic walker of spec-defined spaces (esm/spec.hpp, whose
// config is the compiled spec) or a hand-written kernel (NAS-Bench-201's cell space).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "esm/hd.hpp"

namespace esm {

// Bytes per element used for activation and weight bytes (float32 inference).
constexpr int64_t kBytesPerElement = 4;

// Receives the layers of one genome (host and device code, see esm/hd.hpp). Only convolutions and
// linear layers are "compute layers": they carry MACs, count in `layers` and their outputs count as
// activations. Normalisation layers only add parameters. Everything is attributed to the current
// slot (set_slot), or to the fixed part of the network (stem, head) when the slot is -1.
class Accumulator {
 public:
  ESM_HD Accumulator(int64_t* totals, int64_t* slots, int n_slots)
      : totals_(totals), slots_(slots), n_slots_(n_slots) {}

  ESM_HD void set_slot(int slot) { slot_ = slot; }

  // Convolution with square kernel; returns the output spatial size through oh/ow.
  ESM_HD void conv(int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t pad,
                   int64_t groups, int64_t h, int64_t w, bool bias, int64_t* oh, int64_t* ow);
  ESM_HD void linear(int64_t in, int64_t out, bool bias);
  ESM_HD void batchnorm(int64_t channels) { add(kParams, 2 * channels); }

  // Indices of the quantities; the layout of totals and of each slot record.
  enum Field { kMacs = 0, kParams = 1, kActivationBytes = 2, kLayers = 3, kFields = 4 };

 private:
  ESM_HD void add(Field f, int64_t v);
  int64_t* totals_;
  int64_t* slots_;
  int n_slots_;
  int slot_ = -1;
};

// Output spatial size of a convolution or pooling window.
ESM_HD inline int64_t conv_out(int64_t h, int64_t k, int64_t stride, int64_t pad) {
  return (h + 2 * pad - k) / stride + 1;
}

// The Accumulator's methods are defined here, inline, so that each space kernel's walk
// compiles into straight-line additions (out of line they cost 2.5-4x in throughput).
ESM_HD inline void Accumulator::add(Field f, int64_t v) {
  totals_[f] += v;
  if (slot_ >= 0 && slot_ < n_slots_) slots_[slot_ * kFields + f] += v;
}

ESM_HD inline void Accumulator::conv(int64_t cin, int64_t cout, int64_t k, int64_t stride,
                                     int64_t pad, int64_t groups, int64_t h, int64_t w, bool bias,
                                     int64_t* oh, int64_t* ow) {
  int64_t out_h = conv_out(h, k, stride, pad), out_w = conv_out(w, k, stride, pad);
  add(kMacs, out_h * out_w * cout * (cin / groups) * k * k);
  add(kParams, cout * (cin / groups) * k * k + (bias ? cout : 0));
  add(kActivationBytes, out_h * out_w * cout * kBytesPerElement);
  add(kLayers, 1);
  if (oh) *oh = out_h;
  if (ow) *ow = out_w;
}

ESM_HD inline void Accumulator::linear(int64_t in, int64_t out, bool bias) {
  add(kMacs, in * out);
  add(kParams, in * out + (bias ? out : 0));
  add(kActivationBytes, out * kBytesPerElement);
  add(kLayers, 1);
}

// A search space as the cost core knows it.
struct SpaceKernel {
  const char* name;
  // Number of integers the space's config must have (channel plan and such); 0: any number,
  // checked by `check`.
  int64_t config_size;
  // Per-gene number of choices for this config; its size is the genome length.
  std::vector<int32_t> (*choices)(const int64_t* config);
  int (*n_slots)(const int64_t* config);
  // Walks one validated genome: the definition of the costs.
  void (*walk)(const int32_t* genome, const int64_t* config, Accumulator& acc);
  // Optional fast path for a block of validated genomes (totals [n, kFields], slots
  // [n, S, kFields] or nullptr, both zeroed); must give exactly what `walk` gives.
  void (*batch)(const int32_t* genomes, int64_t n, const int64_t* config, int64_t* totals,
                int64_t* slots) = nullptr;
  // For config_size 0: throws std::invalid_argument unless `config` ([size]) is sound.
  void (*check)(const int64_t* config, int64_t size) = nullptr;
};

// Throws std::invalid_argument unless `config` (an array of `ndim` dimensions and `size` values)
// is the 1-D config that the space's functions read: space.config_size integers, or for a space
// with config_size 0, a config its `check` accepts.
void check_config(const SpaceKernel& space, int64_t ndim, const int64_t* config, int64_t size);

const SpaceKernel& find_space(const std::string& name);
std::vector<std::string> space_names();

// Checks every gene against its number of choices; throws std::invalid_argument naming the
// first bad gene.
void validate_genomes(const SpaceKernel& space, const int32_t* genomes, int64_t n, int64_t g,
                      const int64_t* config);

// Computes costs of n genomes (row-major [n, g]). totals: [n, kFields]; slots: [n, S, kFields],
// or nullptr to skip the per-slot detail.
void compute_costs(const SpaceKernel& space, const int32_t* genomes, int64_t n, int64_t g,
                   const int64_t* config, int threads, int64_t* totals, int64_t* slots);

// Registered kernels: one translation unit each in csrc/cpu/space_*.cpp, listed in spaces.cpp.
const std::vector<const SpaceKernel*>& registered_spaces();

}  // namespace esm
