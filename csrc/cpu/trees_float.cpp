// Tree ensembles on dense rows, fallback evaluator: the float walk of the compact layout, used
// when the bins of trees_dense.cpp do not fit 16 bits (a feature with more than 65534 distinct
// thresholds). A group of rows walks every tree in lock-step for its full depth, comparing
// float32 or float64 values with the thresholds of the compact breadth-first layout.
#include <algorithm>
#include <memory>
#include <vector>

#include "trees_eval.hpp"
#include "trees_layout.hpp"

namespace esm::predict::trees {
namespace {

template <class T>
struct Node {
  T thr;
  int32_t feature;
  int32_t child;
};

struct FloatTreeInfo {
  int32_t root;
  int32_t depth;
};

constexpr int64_t kFloatGroups = 8;

template <class T>
void walk_block(const Node<T>* nodes, const double* values, const std::vector<FloatTreeInfo>& trees,
                const double* xs, int64_t m, int64_t F, T* xt, double* y) {
  const int64_t groups = (m + kGroup - 1) / kGroup;
  for (int64_t q = 0; q < groups; ++q) {
    T* dst = xt + q * F * kGroup;
    for (int r = 0; r < kGroup; ++r) {
      const int64_t row = std::min<int64_t>(q * kGroup + r, m - 1);  // pad with the last row
      const double* src = xs + row * F;
      for (int64_t f = 0; f < F; ++f) dst[f * kGroup + r] = static_cast<T>(src[f]);
    }
  }
  double acc[kGroup * kFloatGroups] = {};
  for (const FloatTreeInfo& t : trees) {
    for (int64_t q = 0; q < groups; ++q) {
      const T* x = xt + q * F * kGroup;
      int32_t idx[kGroup];
#pragma GCC unroll 16
      for (int r = 0; r < kGroup; ++r) idx[r] = t.root;
      for (int32_t d = 0; d < t.depth; ++d) {
#pragma GCC unroll 16
        for (int r = 0; r < kGroup; ++r) {
          const Node<T>& nd = nodes[idx[r]];
          idx[r] = nd.child + static_cast<int32_t>(x[nd.feature * kGroup + r] > nd.thr);
        }
      }
      double* a = acc + q * kGroup;
#pragma GCC unroll 16
      for (int r = 0; r < kGroup; ++r) a[r] += values[idx[r]];
    }
  }
  for (int64_t r = 0; r < m; ++r) y[r] += acc[r];
}

class FloatWalkImpl final : public FloatWalk {
 public:
  explicit FloatWalkImpl(CompactTrees t) : f32_(t.float32_inputs), values_(std::move(t.value)) {
    for (size_t i = 0; i < t.feature.size(); ++i) {
      if (f32_) {
        n32_.push_back({t.thr32[i], t.feature[i], t.child[i]});
      } else {
        n64_.push_back({t.thr64[i], t.feature[i], t.child[i]});
      }
    }
    for (size_t k = 0; k < t.root.size(); ++k) trees_.push_back({t.root[k], t.depth[k]});
  }

  void eval(const double* xs, int64_t n, int64_t F, double base, double* y) const override {
    constexpr int64_t kFloatBlock = kGroup * kFloatGroups;
    for (int64_t i = 0; i < n; ++i) y[i] = base;
    if (f32_) {
      std::vector<float> xt(static_cast<size_t>(kFloatBlock * F));
      for (int64_t b = 0; b < n; b += kFloatBlock) {
        walk_block(n32_.data(), values_.data(), trees_, xs + b * F, std::min(kFloatBlock, n - b), F,
                   xt.data(), y + b);
      }
    } else {
      std::vector<double> xt(static_cast<size_t>(kFloatBlock * F));
      for (int64_t b = 0; b < n; b += kFloatBlock) {
        walk_block(n64_.data(), values_.data(), trees_, xs + b * F, std::min(kFloatBlock, n - b), F,
                   xt.data(), y + b);
      }
    }
  }

 private:
  bool f32_;
  std::vector<Node<double>> n64_;
  std::vector<Node<float>> n32_;
  std::vector<double> values_;
  std::vector<FloatTreeInfo> trees_;
};

}  // namespace

std::unique_ptr<FloatWalk> make_float_walk(CompactTrees t) {
  return std::make_unique<FloatWalkImpl>(std::move(t));
}

}  // namespace esm::predict::trees
