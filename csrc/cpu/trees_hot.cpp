// Tree ensembles on one-hot rows: splits decided in advance for 0 and 1, then walked or
// evaluated bit-sliced per tree (see trees_eval.hpp and trees_layout.hpp).
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "trees_eval.hpp"
#include "trees_layout.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace esm::predict::trees {
namespace {

template <class W>
class HotBinsT final : public HotBins {
 public:
  using P = HotWalk<W>;

  // Returns null when the used columns do not fit W.
  static std::unique_ptr<HotBinsT> make(const CompactTrees& t, const Common& c, HotLayout mode) {
    const int64_t F = c.n_features;
    auto h = std::make_unique<HotBinsT>();
    // Decisions of node i for raw values 0 and 1 (standardised as Model::predict_rows does).
    auto decide = [&](size_t i, double raw) {
      const int32_t f = t.feature[i];
      double v = (raw - c.x_mean[f]) / c.x_scale[f];
      if (t.float32_inputs) v = static_cast<double>(static_cast<float>(v));
      return v > node_threshold(t, i);
    };
    // Follows constant splits from node i to the first leaf or deciding split.
    auto skip = [&](int32_t i) {
      while (t.child[i] != i) {
        const bool d0 = decide(i, 0.0), d1 = decide(i, 1.0);
        if (d0 != d1) break;
        i = t.child[i] + (d0 ? 1 : 0);
      }
      return i;
    };
    std::vector<ITree> trees;
    h->used_.assign(static_cast<size_t>(F), -1);
    int32_t U = 0;
    for (size_t k = 0; k < t.root.size(); ++k) {
      ITree tree;
      std::vector<std::pair<int32_t, int32_t>> todo{{skip(t.root[k]), 0}};  // (old, new)
      tree.push_back({});
      while (!todo.empty()) {
        const auto [i, me] = todo.back();
        todo.pop_back();
        if (t.child[i] == i) {
          tree[me] = {0, -1, -1, t.value[i]};
          continue;
        }
        const int32_t f = t.feature[i];
        if (h->used_[f] < 0) h->used_[f] = U++;
        // Children: "cold" (column 0) first, "hot" second.
        const bool hot_right = decide(i, 1.0);
        const int32_t cold = skip(t.child[i] + (hot_right ? 0 : 1));
        const int32_t warm = skip(t.child[i] + (hot_right ? 1 : 0));
        const auto l = static_cast<int32_t>(tree.size());
        tree.push_back({});
        tree.push_back({});
        tree[me] = {static_cast<uint32_t>(f), l, l + 1, 0.0};  // word: raw column for now
        todo.push_back({cold, l});
        todo.push_back({warm, l + 1});
      }
      trees.push_back(std::move(tree));
    }
    if ((static_cast<int64_t>(U) + 1) * kGroup >
        static_cast<int64_t>(std::numeric_limits<W>::max())) {
      return nullptr;
    }
    h->n_used_ = U;
    const bool sliceable = static_cast<int64_t>(U) * kWords <= std::numeric_limits<uint16_t>::max();
    // Offset of every raw column's byte in a group (sink column U + 1 for unused ones and for
    // entry F, which stands for any column outside [0, F)).
    h->slot_.assign(static_cast<size_t>(F) + 1, (U + 1) * kGroup);
    for (int64_t f = 0; f < F; ++f) {
      if (h->used_[f] >= 0) h->slot_[f] = h->used_[f] * kGroup;
    }
    for (ITree& tree : trees) {
      for (INode& nd : tree) {
        if (nd.left >= 0) nd.word = static_cast<uint32_t>(h->used_[nd.word] * kGroup);
      }
      int32_t depth = 0;
      node_levels(tree, &depth);
      const double sc =
          sliceable && mode != HotLayout::kWalk ? Layout<P>::slice_cost(tree, depth) : -1.0;
      if (sc >= 0.0 && (mode == HotLayout::kSlice || sc < Layout<P>::walk_cost(depth))) {
        h->layout_.add_sliced(tree);
      } else {
        h->layout_.add(tree, P::pass(U));
      }
    }
    h->sliced_ = h->layout_.any_sliced();
    return h;
  }

  void eval(const int32_t* hot, int64_t n, int64_t k, double base, double* y) const override {
    const int64_t stride = (n_used_ + 2) * kGroup;
    const int64_t F = static_cast<int64_t>(used_.size());
    std::vector<uint8_t>& xt =
        block_scratch<uint8_t>(static_cast<size_t>(kBlock / kGroup * stride));
    const int32_t* slot = slot_.data();
    std::vector<uint64_t>& planes =
        block_scratch<uint64_t>(static_cast<size_t>(std::max<int64_t>(1, n_used_ * kWords)));
    double acc[kBlock];
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t m = std::min(kBlock, n - b);
      const int64_t groups = (m + kGroup - 1) / kGroup;
      std::memset(xt.data(), 0, static_cast<size_t>(groups * stride));
      for (int64_t q = 0; q < groups; ++q) {
        uint8_t* dst = xt.data() + q * stride;
        const int64_t rows = std::min<int64_t>(kGroup, m - q * kGroup);
        // Branch-free scatter: columns outside [0, F) and unused ones land in the sink
        // column (n_used_ + 1), which no node reads.
        for (int64_t r = 0; r < rows; ++r) {
          const int32_t* h = hot + (b + q * kGroup + r) * k;
          uint8_t* d = dst + r;
          for (int64_t j = 0; j < k; ++j) {
            const int32_t f = h[j];
            const int32_t fi =
                static_cast<uint32_t>(f) < static_cast<uint32_t>(F) ? f : static_cast<int32_t>(F);
            d[slot[fi]] = 1;
          }
        }
      }
      if (sliced_) to_planes(xt.data(), groups, stride, planes.data());
      layout_.walk(xt.data(), m, stride, acc, planes.data());
      for (int64_t r = 0; r < m; ++r) y[b + r] = base + acc[r];
    }
  }

 private:
  // Hot masks of the used columns, [u][kWords] words of 64 rows, from the byte matrix.
  void to_planes(const uint8_t* xt, int64_t groups, int64_t stride, uint64_t* planes) const {
    const int64_t U = n_used_;
    std::fill_n(planes, static_cast<size_t>(U * kWords), uint64_t{0});
    static_assert(kGroup == 16, "planes are built from 16-row groups");
    for (int64_t q = 0; q < groups; ++q) {
      const uint8_t* src = xt + q * stride;
      const int sh = static_cast<int>(16 * (q % 4));
      uint64_t* dst = planes + q / 4;
      for (int64_t u = 0; u < U; ++u) {
#if defined(__SSE2__)
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + u * kGroup));
        const auto bits = static_cast<uint32_t>(_mm_movemask_epi8(_mm_slli_epi16(v, 7)));
#else
        uint32_t bits = 0;
        for (int r = 0; r < kGroup; ++r) bits |= static_cast<uint32_t>(src[u * kGroup + r]) << r;
#endif
        dst[u * kWords] |= static_cast<uint64_t>(bits) << sh;
      }
    }
  }

  bool sliced_ = false;
  std::vector<int32_t> used_;  // [F] used column of a raw column, -1 when no split decides on it
  std::vector<int32_t> slot_;  // [F + 1] byte offset in a group (see eval)
  int64_t n_used_ = 0;
  Layout<P> layout_;
};

}  // namespace

std::unique_ptr<HotBins> make_hot_bins(const CompactTrees& t, const Common& c, HotLayout mode) {
  if (auto h = HotBinsT<uint16_t>::make(t, c, mode)) return h;
  return HotBinsT<uint32_t>::make(t, c, mode);
}

}  // namespace esm::predict::trees
