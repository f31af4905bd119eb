// Compiled feature encoders and the fused genomes -> costs -> features -> model pipeline.
//
// An encoder is a "plan": a list of ops, each writing a contiguous run of feature columns
// from one genome, its costs (esm::compute_costs) and two per-space tables built in Python
// (which slots are active for which gene values; the input pixels per resolution gene). The
// Python side (esm.predictor.plan) builds the plan from an esm.surrogate encoder and checks,
// at compile time, that the plan reproduces the Python encoder on a random sample.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "esm/costs.hpp"
#include "esm/predict.hpp"

namespace esm::predict {

enum class OpKind { kOnehot = 0, kScalars = 1, kSlots = 2, kRoofline = 3, kStageChoice = 4 };

// Network-level quantities of a kScalars op (codes match esm.predictor.plan.SCALARS).
// clang-format off
enum Scalar : int32_t {
  kMacs = 0, kParams = 1, kActivationBytes = 2, kWeightBytes = 3, kLayers = 4,
  kActiveSlots = 5, kInputPixels = 6, kFixedMacs = 7,
};
// clang-format on

struct Op {
  OpKind kind = OpKind::kOnehot;
  // kOnehot: slot of every gene (-1 = always active), [G].
  // kScalars: Scalar codes. kSlots: cost field indices written per slot, slot after slot.
  // kRoofline: stage index of every slot [S].
  // kStageChoice: [nf, nf cost fields, n_groups, then per group: k (its genes' choices), n_pairs,
  // n_pairs (slot, gene) pairs]; a group writes k * nf columns, column v * nf + f holding the
  // sum of field f over its slots whose gene takes value v.
  std::vector<int32_t> ints;
  // kRoofline: peak_tflops, bandwidth_gbs, launch_us, batch.
  std::vector<double> reals;
  int64_t n_stages = 0;  // kRoofline
};

struct EncodePlan {
  std::vector<int32_t> choices;  // [G] number of choices per gene
  int64_t n_slots = 0;
  // Slot activity: slot s is active when slot_gene[s] < 0, or when
  // slot_active[s * max_choice + genome[slot_gene[s]]] is non-zero.
  std::vector<int32_t> slot_gene;
  std::vector<uint8_t> slot_active;
  int32_t max_choice = 0;
  // Input pixels: pixel_table[genome[pixel_gene]], or pixel_table[0] when pixel_gene < 0.
  int32_t pixel_gene = -1;
  std::vector<double> pixel_table;
  std::vector<Op> ops;

  // Validates the plan against the space (its genes' choices and slot count for `config`);
  // computes the feature count.
  void check(const SpaceKernel& space, const int64_t* config);
  int64_t n_features() const { return n_features_; }
  bool needs_costs() const { return needs_costs_; }
  bool onehot_only() const;

 private:
  int64_t n_features_ = 0;
  bool needs_costs_ = false;
};

// Features of n validated genomes [n, G]; totals [n, 4] and slots [n, S, 4] are the costs
// (may be null when the plan does not need costs). X receives [n, F].
void encode(const EncodePlan& plan, const int32_t* genomes, int64_t n, const int64_t* totals,
            const int64_t* slots, double* X);

// Features of n genomes [n, g]: validates them, then computes costs (when the plan needs them)
// and features on `threads` workers. X receives [n, F].
void encode_genomes(const SpaceKernel& space, const int64_t* config, const EncodePlan& plan,
                    const int32_t* genomes, int64_t n, int64_t g, double* X, int threads);

// The whole pipeline: validates the genomes, then per piece of at most `chunk` rows computes
// costs (when needed), features and predictions. Memory: threads * chunk * (F + 4 S + 4).
// A linear model over one-hot features skips the feature matrix (per-gene tables); so does a
// model with a one-hot path (Model::accepts_hot, trees) over a one-hot-only plan.
void predict_genomes(const SpaceKernel& space, const int64_t* config, const EncodePlan& plan,
                     const Model& model, const int32_t* genomes, int64_t n, int64_t g, double* out,
                     int threads, int64_t chunk);

// numpy's pairwise summation of n contiguous doubles (same rounding as ndarray.sum).
double pairwise_sum(const double* v, int64_t n, int64_t stride = 1);

}  // namespace esm::predict
