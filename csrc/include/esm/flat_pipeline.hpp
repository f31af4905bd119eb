// The flat pipeline: one genome in, its first bad gene and its costs out, as host and device
// code (esm/hd.hpp). The CUDA pipeline (csrc/cuda/pipeline.cu) runs it one thread per genome;
// its CPU twin (csrc/cpu/flat_pipeline.cpp, `_core.flat_costs`) runs the same source on the
// host and is the test oracle of the device kernels on machines without a GPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "esm/costs.hpp"
#include "esm/encode.hpp"
#include "esm/encode_row.hpp"
#include "esm/hd.hpp"
#include "esm/nb201.hpp"
#include "esm/spec.hpp"
#include "esm/spec_walk.hpp"

namespace esm::flat {

// The cost walks the flat pipeline knows: the built-in kernels of esm/costs.hpp.
enum Walk : int32_t { kSpecWalk = 0, kNb201Walk = 1 };

// Index of the first gene of `g` outside [0, choices[j]), or -1 when the genome is valid.
ESM_HD inline int64_t first_bad_gene(const int32_t* g, const int32_t* choices, int64_t G) {
  for (int64_t j = 0; j < G; ++j) {
    if (g[j] < 0 || g[j] >= choices[j]) return j;
  }
  return -1;
}

// Costs of one validated genome: totals [kFields] and, when slots is not null, slots
// [n_slots, kFields]; both must be zeroed. A spec program in table mode walks its tables
// (as walk_batch does on the CPU), otherwise its interpreter.
ESM_HD inline void costs_one(int32_t walk, const int64_t* config, const int32_t* g, int64_t* totals,
                             int64_t* slots, int n_slots) {
  if (walk == kNb201Walk) {
    Accumulator acc(totals, slots, slots ? n_slots : 0);
    nb201::walk(g, config, acc);
  } else if (config[spec::kHMode] == spec::kTables) {
    spec::table_walk_one(config, g, totals, slots);
  } else {
    Accumulator acc(totals, slots, slots ? n_slots : 0);
    spec::interpret_one(config, g, acc);
  }
}

// The walk of a space name (throws std::invalid_argument for one the flat pipeline lacks).
int32_t walk_of(const std::string& space);

// CPU twin of the device pipeline's cost stage over n genomes [n, G] (unvalidated): bad[i] is
// the first bad gene of row i (-1: valid); valid rows get their costs in totals [n, kFields]
// and slots [n, n_slots, kFields] (or null), invalid rows zeros.
void costs_twin(int32_t walk, const int64_t* config, const int32_t* choices, int64_t G, int n_slots,
                const int32_t* genomes, int64_t n, int64_t* totals, int64_t* slots, int64_t* bad);

// The arrays behind a FlatPlan, built from a checked EncodePlan (throws std::invalid_argument
// for a plan with more than kMaxSlots slots or roofline stages).
struct FlatPlanData {
  int64_t G = 0, S = 0, F = 0;
  int32_t max_choice = 0, pixel_gene = -1;
  std::vector<int32_t> choices, slot_gene, op_kind, op_start, op_count, op_stages, ints;
  std::vector<uint8_t> slot_active;
  std::vector<double> pixel_table, reals;
  bool needs_costs = false;
  // A view whose pointers point into this object's vectors.
  FlatPlan view() const;
};
FlatPlanData flatten(const predict::EncodePlan& plan);

// Linear model of the fold: coef, mean, scale [F]; target "identity" or "log".
struct LinearData {
  std::vector<double> coef, mean, scale;
  double intercept = 0.0;
  bool log_target = false;
  LinearFold view() const {
    return {coef.data(), mean.data(), scale.data(), intercept, log_target};
  }
};

// One genome through the whole flat pipeline with a folded linear model: first bad gene (NaN
// prediction for a bad genome), costs, encode and dot product, no feature row stored. When
// `totals` is not null it receives the genome's cost totals [kFields] (zeros for a bad genome),
// as the cost stage gives them, so a search reads its cost objective from the same walk.
ESM_HD inline double predict_linear_one(int32_t walk, const int64_t* config, const FlatPlan& p,
                                        const LinearFold& lin, const int32_t* g, int64_t* bad,
                                        int64_t* slot_buf, int64_t* totals = nullptr) {
  *bad = first_bad_gene(g, p.choices, p.G);
  int64_t tot[Accumulator::kFields] = {0, 0, 0, 0};
  if (*bad >= 0) {
    if (totals) {
      for (int64_t f = 0; f < Accumulator::kFields; ++f) totals[f] = 0;
    }
    return spec::bits_to_double(0x7ff8000000000000LL);
  }
  for (int64_t k = 0; k < p.S * Accumulator::kFields; ++k) slot_buf[k] = 0;
  costs_one(walk, config, g, tot, slot_buf, static_cast<int>(p.S));
  if (totals) {
    for (int64_t f = 0; f < Accumulator::kFields; ++f) totals[f] = tot[f];
  }
  double s = 0.0;
  encode_row(p, g, tot, slot_buf,
             [&](int64_t j, double v) { s += lin.coef[j] * ((v - lin.mean[j]) / lin.scale[j]); });
  const double y = lin.intercept + s;
  return lin.log_target ? exp(y) : y;
}

// CPU twin of the device pipeline (one source with its kernels): features and folded linear
// predictions of unvalidated genomes, bad rows reported per row.
class FlatPipeline {
 public:
  FlatPipeline(const SpaceKernel& space, std::vector<int64_t> config,
               const predict::EncodePlan& plan);
  void set_linear(LinearData lin);
  // X [n, F] (rows of bad genomes are NaN); bad [n].
  void features(const int32_t* genomes, int64_t n, double* X, int64_t* bad) const;
  // out [n] (NaN for bad genomes); bad [n]; totals [n, kFields] (zeros for bad genomes) or
  // null. Needs set_linear.
  void predict_linear(const int32_t* genomes, int64_t n, double* out, int64_t* bad,
                      int64_t* totals = nullptr) const;
  int64_t n_features() const { return plan_.F; }
  int64_t n_genes() const { return plan_.G; }
  int32_t walk() const { return walk_; }
  const std::vector<int64_t>& config() const { return config_; }
  const FlatPlanData& plan() const { return plan_; }
  const LinearData* linear() const { return has_linear_ ? &lin_ : nullptr; }

 private:
  int32_t walk_;
  std::vector<int64_t> config_;
  FlatPlanData plan_;
  LinearData lin_;
  bool has_linear_ = false;
};

}  // namespace esm::flat
