// A linear model folded into lookup tables: y = intercept + sum_t table_t[key_t(genome)].
// Built by esm.predictor.fold (Python); evaluated here, chunked and threaded.
#pragma once

#include <cstdint>
#include <vector>

namespace esm::predict {

struct Fold {
  std::vector<int32_t> choices;      // [G] values per gene
  std::vector<int32_t> key_genes;    // [K] key genes, table after table
  std::vector<int64_t> key_strides;  // [K] mixed-radix strides
  std::vector<int64_t> key_ptr;      // [T + 1]
  std::vector<int64_t> table_ptr;    // [T + 1]
  std::vector<double> values;        // all tables
  double intercept = 0.0;

  // Throws std::invalid_argument unless every key index stays inside its table.
  void check() const;
  int64_t n_genes() const { return static_cast<int64_t>(choices.size()); }
};

// Checks every gene of `genomes` [n, G] against `choices` (throws std::invalid_argument naming
// the first bad one), then writes y[n].
void predict_folded(const Fold& fold, const int32_t* genomes, int64_t n, double* out, int threads,
                    int64_t chunk);

}  // namespace esm::predict
