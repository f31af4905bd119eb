// Tree ensembles on dense rows: binned inputs and the binned walk (see trees_eval.hpp).
#include <algorithm>
#include <memory>
#include <vector>

#include "trees_eval.hpp"
#include "trees_layout.hpp"

namespace esm::predict::trees {
namespace {

template <class B>
class DenseBinsT final : public DenseBins {
 public:
  using P = DenseWalk<B>;

  // Returns null when some feature has more thresholds than B can index.
  static std::unique_ptr<DenseBinsT> make(const CompactTrees& t, int64_t F) {
    auto d = std::make_unique<DenseBinsT>();
    d->f32_ = t.float32_inputs;
    std::vector<std::vector<double>> per(static_cast<size_t>(F));
    for (size_t i = 0; i < t.feature.size(); ++i) {
      if (t.child[i] != static_cast<int32_t>(i)) per[t.feature[i]].push_back(node_threshold(t, i));
    }
    std::vector<int32_t> used(static_cast<size_t>(F), -1);
    d->offset_.push_back(0);
    for (int64_t f = 0; f < F; ++f) {
      std::vector<double>& v = per[f];
      if (v.empty()) continue;
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
      if (static_cast<int64_t>(v.size()) > static_cast<int64_t>(P::kMask) - 1) return nullptr;
      used[f] = static_cast<int32_t>(d->feature_.size());
      d->feature_.push_back(static_cast<int32_t>(f));
      d->thr_.insert(d->thr_.end(), v.begin(), v.end());
      d->offset_.push_back(static_cast<int64_t>(d->thr_.size()));
    }
    const int64_t U = static_cast<int64_t>(d->feature_.size());
    if (U * kGroup >= (int64_t{1} << (32 - P::kBits))) return nullptr;
    for (size_t k = 0; k < t.root.size(); ++k) {
      const int32_t root = t.root[k], end = tree_end(t, k);
      ITree tree(static_cast<size_t>(end - root));
      for (int32_t i = root; i < end; ++i) {
        INode& nd = tree[i - root];
        nd.value = t.value[i];
        if (t.child[i] == i) {
          nd.word = P::pass(U);
          nd.left = nd.right = -1;
          continue;
        }
        const int32_t u = used[t.feature[i]];
        const double* lo = d->thr_.data() + d->offset_[u];
        const double* hi = d->thr_.data() + d->offset_[u + 1];
        const auto k_thr =
            static_cast<uint32_t>(std::lower_bound(lo, hi, node_threshold(t, i)) - lo);
        nd.word = static_cast<uint32_t>(u * kGroup) << P::kBits | k_thr;
        nd.left = t.child[i] - root;
        nd.right = nd.left + 1;
      }
      d->layout_.add(tree, P::pass(U));
    }
    return d;
  }

  void eval(const double* xs, int64_t n, int64_t F, double base, double* y) const override {
    const int64_t U = static_cast<int64_t>(feature_.size()), stride = U * kGroup;
    std::vector<B>& xt = block_scratch<B>(static_cast<size_t>(std::max<int64_t>(1, kBlock * U)));
    double acc[kBlock];
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t m = std::min(kBlock, n - b);
      const int64_t groups = (m + kGroup - 1) / kGroup;
      for (int64_t q = 0; q < groups; ++q) {
        const double* rows[kGroup];
        for (int r = 0; r < kGroup; ++r) {
          rows[r] = xs + (b + std::min<int64_t>(q * kGroup + r, m - 1)) * F;
        }
        bin_group(rows, xt.data() + q * stride);
      }
      layout_.walk(xt.data(), m, stride, acc);
      for (int64_t r = 0; r < m; ++r) y[b + r] = base + acc[r];
    }
  }

 private:
  // Bins of a group's rows, column-major: for every used feature, the number of its
  // thresholds below each row's value, by a branch-free lower bound that the kGroup rows run in
  // lock-step (the step count depends only on the feature). NaN gives 0.
  void bin_group(const double* const* rows, B* dst) const {
    const int64_t U = static_cast<int64_t>(feature_.size());
    for (int64_t u = 0; u < U; ++u, dst += kGroup) {
      const int32_t f = feature_[u];
      const double* t = thr_.data() + offset_[u];
      const int64_t n = offset_[u + 1] - offset_[u];
      double v[kGroup];
      for (int r = 0; r < kGroup; ++r) {
        v[r] = f32_ ? static_cast<double>(static_cast<float>(rows[r][f])) : rows[r][f];
      }
      if (n == 1) {
        for (int r = 0; r < kGroup; ++r) dst[r] = static_cast<B>(t[0] < v[r]);
        continue;
      }
      int64_t pos[kGroup] = {};
      for (int64_t len = n; len > 1;) {
        const int64_t half = len / 2;
#pragma GCC unroll 16
        for (int r = 0; r < kGroup; ++r)
          pos[r] = (t[pos[r] + half] < v[r]) ? pos[r] + half : pos[r];
        len -= half;
      }
      for (int r = 0; r < kGroup; ++r) dst[r] = static_cast<B>(pos[r] + (t[pos[r]] < v[r] ? 1 : 0));
    }
  }

  bool f32_ = false;
  std::vector<int32_t> feature_;  // [U] raw feature of used feature u
  std::vector<int64_t> offset_;   // [U + 1] into thr_
  std::vector<double> thr_;       // sorted distinct thresholds of every used feature
  Layout<P> layout_;
};

}  // namespace

std::unique_ptr<DenseBins> make_dense_bins(const CompactTrees& t, int64_t n_features) {
  if (auto d = DenseBinsT<uint8_t>::make(t, n_features)) return d;
  return DenseBinsT<uint16_t>::make(t, n_features);
}

}  // namespace esm::predict::trees
