// The flat pipeline: one genome in, its first bad gene and its costs out, as host and device
// code (esm/hd.hpp). The CUDA pipeline (csrc/cuda/pipeline.cu) runs it one thread per genome;
// its CPU twin (csrc/cpu/flat_pipeline.cpp, `_core.flat_costs`) runs the same source on the
// host and is the test oracle of the device kernels on machines without a GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "esm/costs.hpp"
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
ESM_HD inline void costs_one(int32_t walk, const int64_t* config, const int32_t* g,
                             int64_t* totals, int64_t* slots, int n_slots) {
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
void costs_twin(int32_t walk, const int64_t* config, const int32_t* choices, int64_t G,
                int n_slots, const int32_t* genomes, int64_t n, int64_t* totals, int64_t* slots,
                int64_t* bad);

}  // namespace esm::flat
