// Tree ensembles: validation of the arrays and the compact breadth-first layout
// (compact_trees, see esm/predict.hpp) that every evaluator starts from and the CUDA kernel
// walks.
//
// Exactness: both rules are reduced to "go right when x > t'":
//   float64 inputs: "le" t' = t; "lt" t' = the largest double below t.
//   float32 inputs (x rounded to float32 first, as scikit-learn and XGBoost do): "le" t' = the
//   largest float32 <= t; "lt" t' = the largest float32 < t. For a float32 x these give exactly
//   the same decisions as comparing x with the float64 threshold t, so float32 thresholds are
//   only used where they are exact.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/predict.hpp"

namespace esm::predict {
namespace {

float below_or_equal_f32(double t) {
  float f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

float strictly_below_f32(double t) {
  float f = below_or_equal_f32(t);
  if (static_cast<double>(f) == t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

// Whether float64 threshold t is a float32 rounding boundary: the largest double that rounds
// (to nearest, ties to even) to f = the largest float32 below t or lower. Then for every double
// x: x <= t exactly when float32(x) <= f. esm's scikit-learn export wrote such thresholds
// before issue 20 (its trees compare float32-rounded inputs), so those files run on the float32
// path.
bool f32_boundary(double t, float* f_out) {
  if (!std::isfinite(t)) return false;
  const float inf = std::numeric_limits<float>::infinity();
  float f = below_or_equal_f32(t);
  if (static_cast<double>(f) == t) f = std::nextafter(f, -inf);
  const float nxt = std::nextafter(f, inf);
  if (!std::isfinite(f) || !std::isfinite(nxt)) return false;
  const double mid = (static_cast<double>(f) + static_cast<double>(nxt)) / 2.0;
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const double boundary =
      (bits & 1u) == 0 ? mid : std::nextafter(mid, -std::numeric_limits<double>::infinity());
  *f_out = f;
  return boundary == t;
}

}  // namespace

CompactTrees compact_trees(const TreesParams& p, int64_t F) {
  CompactTrees out;
  out.base = p.base;
  out.float32_inputs = p.float32_inputs;
  const int64_t M = static_cast<int64_t>(p.feature.size());
  if (M == 0) throw std::invalid_argument("trees: the ensemble has no nodes");
  if (static_cast<int64_t>(p.threshold.size()) != M || static_cast<int64_t>(p.left.size()) != M ||
      static_cast<int64_t>(p.right.size()) != M || static_cast<int64_t>(p.value.size()) != M) {
    throw std::invalid_argument(
        "trees: feature, threshold, left, right and value must all have the same length");
  }
  if (M >= std::numeric_limits<int32_t>::max() / 2)
    throw std::invalid_argument("trees: too many nodes");
  if (p.roots.empty())
    throw std::invalid_argument("trees: the ensemble has no trees (roots is empty)");
  if (!std::isfinite(p.base)) throw std::invalid_argument("trees: base must be finite");

  std::vector<char> seen(static_cast<size_t>(M), 0);
  std::vector<int32_t> order, depth_of;  // breadth-first old ids of one tree, their depth
  std::vector<int32_t> new_id(static_cast<size_t>(M), -1);
  const double inf = std::numeric_limits<double>::infinity();
  for (size_t t = 0; t < p.roots.size(); ++t) {
    const int32_t root = p.roots[t];
    if (root < 0 || root >= M) {
      throw std::invalid_argument("trees: root " + std::to_string(t) + " is " +
                                  std::to_string(root) + ", out of range [0, " + std::to_string(M) +
                                  ")");
    }
    order.assign(1, root);
    depth_of.assign(1, 0);
    if (seen[root])
      throw std::invalid_argument("trees: node " + std::to_string(root) + " is reached twice");
    seen[root] = 1;
    const int32_t first = static_cast<int32_t>(out.value.size());
    int32_t depth = 0;
    // Breadth-first: position in `order` is the new id (offset by `first`).
    for (size_t q = 0; q < order.size(); ++q) {
      const int32_t i = order[q];
      const int32_t l = p.left[i], r = p.right[i];
      depth = std::max(depth, depth_of[q]);
      if (l == -1 && r == -1) {
        if (!std::isfinite(p.value[i])) {
          throw std::invalid_argument("trees: leaf " + std::to_string(i) +
                                      " has a non-finite value");
        }
        continue;
      }
      for (int32_t c : {l, r}) {
        if (c < 0 || c >= M) {
          throw std::invalid_argument("trees: node " + std::to_string(i) + " has child " +
                                      std::to_string(c) + ", out of range [0, " +
                                      std::to_string(M) + ") (a leaf needs left = right = -1)");
        }
        if (seen[c]) {
          throw std::invalid_argument("trees: node " + std::to_string(c) +
                                      " is reached twice (a cycle or a shared node)");
        }
        seen[c] = 1;
        order.push_back(c);
        depth_of.push_back(depth_of[q] + 1);
      }
      if (p.feature[i] < 0 || p.feature[i] >= F) {
        throw std::invalid_argument("trees: node " + std::to_string(i) + " splits on feature " +
                                    std::to_string(p.feature[i]) + ", out of range [0, " +
                                    std::to_string(F) + ")");
      }
      if (std::isnan(p.threshold[i])) {
        throw std::invalid_argument("trees: node " + std::to_string(i) + " has a NaN threshold");
      }
    }
    for (size_t q = 0; q < order.size(); ++q) new_id[order[q]] = first + static_cast<int32_t>(q);
    // Children of a node are adjacent in breadth-first order: right = left + 1.
    for (size_t q = 0; q < order.size(); ++q) {
      const int32_t i = order[q], me = first + static_cast<int32_t>(q);
      double t64 = inf, v = 0.0;
      float t32 = std::numeric_limits<float>::infinity();
      int32_t feat = 0, child = me;
      if (p.left[i] == -1) {
        v = p.value[i];
      } else {
        child = new_id[p.left[i]];
        if (new_id[p.right[i]] != child + 1)
          throw std::logic_error("trees: layout invariant broken");
        const double t = p.threshold[i];
        feat = p.feature[i];
        t64 = p.rule_lt ? std::nextafter(t, -inf) : t;
        t32 = p.rule_lt ? strictly_below_f32(t) : below_or_equal_f32(t);
      }
      if (out.float32_inputs)
        out.thr32.push_back(t32);
      else
        out.thr64.push_back(t64);
      out.feature.push_back(feat);
      out.child.push_back(child);
      out.value.push_back(v);
    }
    out.root.push_back(first);
    out.depth.push_back(depth);
  }
  // float64 "le" ensembles whose thresholds are all float32 rounding boundaries give the
  // same decisions on float32-rounded inputs with float32 thresholds: use the faster path.
  if (!out.float32_inputs && !p.rule_lt) {
    std::vector<float> t32(out.thr64.size());
    bool all = true;
    for (size_t i = 0; i < out.thr64.size() && all; ++i) {
      if (out.child[i] == static_cast<int32_t>(i)) {  // leaf
        t32[i] = std::numeric_limits<float>::infinity();
        continue;
      }
      all = f32_boundary(out.thr64[i], &t32[i]);
    }
    if (all) {
      out.float32_inputs = true;
      out.thr32 = std::move(t32);
      out.thr64.clear();
    }
  }
  return out;
}

}  // namespace esm::predict
