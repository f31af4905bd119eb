// The evaluators of a compiled tree ensemble (internal to csrc/cpu/*trees*.cpp): each gives
// y[i] = base + sum over the trees of the leaf values reached by row i.
//
// Dense rows (predict on features, encodings with continuous columns; trees_dense.cpp): every
// feature that a split uses is replaced by its bin, the number of the feature's distinct
// thresholds (over the whole ensemble, in the comparison domain of compact_trees) that lie
// below the value. With the sorted thresholds t_0 < t_1 < ... of a feature, "x > t_k" holds
// exactly when "bin(x) > k", so the walk compares small integers (uint8 when no feature has more
// than 254 thresholds, else uint16), a group's inputs take 1-2 bytes per used feature and stay
// in L1, and a node packs into 32 bits: (used feature * kGroup) << bits | k. NaN gets bin 0 and
// goes left everywhere, as "NaN > t" is false. A feature with more than 65534 thresholds falls
// back to the float walk of the compact layout (trees_float.cpp).
//
// One-hot rows (Model::predict_hot; genomes through a one-hot encoder; trees_hot.cpp): a raw
// column is 0 or 1, so a split on it is decided in advance for both values. Splits that send 0
// and 1 the same way are removed (the tree gets shallower), the others become "right when the
// column is hot" (children swapped where 1 goes left), and a row is a byte per used column; a
// node is then just (used column * kGroup) in 16 bits and a step is i = 2 i + 1 + hot[node].
// A tree of at most 256 leaves may instead be evaluated bit-sliced, 64 rows per machine word,
// chosen per tree by an estimated cost (trees_layout.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "esm/predict.hpp"

namespace esm::predict::trees {

// Threshold of node i in the comparison domain ("right when v > t").
inline double node_threshold(const CompactTrees& t, size_t i) {
  return t.float32_inputs ? static_cast<double>(t.thr32[i]) : t.thr64[i];
}

// One past the last node of tree k in the compact layout.
inline int32_t tree_end(const CompactTrees& t, size_t k) {
  return k + 1 < t.root.size() ? t.root[k + 1] : static_cast<int32_t>(t.feature.size());
}

// Dense standardised rows xs [n, F] -> bins -> binned walk.
class DenseBins {
 public:
  virtual ~DenseBins() = default;
  virtual void eval(const double* xs, int64_t n, int64_t F, double base, double* y) const = 0;
};
// Null when the bins of some feature do not fit 16 bits.
std::unique_ptr<DenseBins> make_dense_bins(const CompactTrees& t, int64_t n_features);

// One-hot rows given by their hot columns (see Model::predict_hot) -> pre-decided splits.
class HotBins {
 public:
  virtual ~HotBins() = default;
  virtual void eval(const int32_t* hot, int64_t n, int64_t k, double base, double* y) const = 0;
};
// Null when the used columns do not fit 32-bit node words.
std::unique_ptr<HotBins> make_hot_bins(const CompactTrees& t, const Common& c, HotLayout mode);

// Dense standardised rows, fallback: a group of rows walks every tree of the compact layout in
// lock-step for its full depth, comparing float32 or float64 values with the thresholds.
class FloatWalk {
 public:
  virtual ~FloatWalk() = default;
  virtual void eval(const double* xs, int64_t n, int64_t F, double base, double* y) const = 0;
};
std::unique_ptr<FloatWalk> make_float_walk(CompactTrees t);

}  // namespace esm::predict::trees
