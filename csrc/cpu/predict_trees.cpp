// Tree ensembles (random forest, extra trees, gradient boosting, LightGBM/XGBoost converted).
//
// compact_trees validates the arrays and renumbers every tree breadth-first (children of a
// node adjacent, leaves pointing to themselves) with thresholds rewritten to one rule below;
// the CUDA kernel walks that layout. On the CPU the ensemble is then re-laid out for the walk:
// binned inputs, 32-bit (dense) or 16-bit (one-hot) nodes, complete trees up to depth 8 (see
// "binned walk" below); a float walk of the compact layout is the fallback. On one-hot rows a
// tree of at most 256 leaves may instead be evaluated bit-sliced, 64 rows per machine word
// (see "bit-sliced trees"), chosen per tree by an estimated cost.
//
// Exactness: both rules are reduced to "go right when x > t'":
//   float64 inputs: "le" t' = t; "lt" t' = the largest double below t.
//   float32 inputs (x rounded to float32 first, as scikit-learn and XGBoost do): "le" t' = the
//   largest float32 <= t; "lt" t' = the largest float32 < t. For a float32 x these give exactly
//   the same decisions as comparing x with the float64 threshold t, so float32 thresholds are
//   only used where they are exact.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/predict.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
// x: x <= t exactly when float32(x) <= f. esm's scikit-learn export writes such thresholds
// (its trees compare float32-rounded inputs), so those ensembles run on the float32 path.
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
  const double boundary = (bits & 1u) == 0 ? mid : std::nextafter(mid, -std::numeric_limits<double>::infinity());
  *f_out = f;
  return boundary == t;
}

// ------------------------------------------------------------------ binned walk
//
// Dense rows (predict on features, encodings with continuous columns): every feature that a
// split uses is replaced by its bin, the number of the feature's distinct thresholds (over the
// whole ensemble, in the comparison domain above) that lie below the value. With the sorted
// thresholds t_0 < t_1 < ... of a feature, "x > t_k" holds exactly when "bin(x) > k", so the
// walk compares small integers (uint8 when no feature has more than 254 thresholds, else
// uint16), a group's inputs take 1-2 bytes per used feature and stay in L1, and a node packs
// into 32 bits: (used feature * kGroup) << bits | k. NaN gets bin 0 and goes left everywhere,
// as "NaN > t" is false.
//
// One-hot rows (Model::predict_hot; genomes through a one-hot encoder): a raw column is 0 or
// 1, so a split on it is decided in advance for both values. Splits that send 0 and 1 the same
// way are removed (the tree gets shallower), the others become "right when the column is hot"
// (children swapped where 1 goes left), and a row is a byte per used column; a node is then
// just (used column * kGroup) in 16 bits and a step is i = 2 i + 1 + hot[node].
//
// Layouts: trees of depth <= kCompleteDepth are complete binary trees without child pointers
// (a step is i = 2 i + 1 + right); a leaf above the last level is continued by pass-through
// nodes that always go left. Deeper trees keep the breadth-first layout with a child index per
// node; a group walks them until no row moved (all reached leaves), from the depth of the
// shallowest leaf on. A group of kGroup rows walks one tree in lock-step (their indices stay in
// registers), blocks of kBlock rows stay in cache while every tree is applied to them.
#ifndef ESM_TREES_GROUP
#define ESM_TREES_GROUP 16
#endif
constexpr int kGroup = ESM_TREES_GROUP;
constexpr int64_t kGroups = 256 / kGroup;
constexpr int64_t kBlock = kGroup * kGroups;
#ifndef ESM_COMPLETE_DEPTH
#define ESM_COMPLETE_DEPTH 8
#endif
constexpr int kCompleteDepth = ESM_COMPLETE_DEPTH;

// A tree before layout: node 0 is the root; leaves have left = right = -1. `word` is the
// packed split (its meaning is the walk policy's).
struct INode {
  uint32_t word;
  int32_t left, right;
  double value;
};
using ITree = std::vector<INode>;

template <class W>
struct BfsNode {
  W word;
  int32_t child;  // tree-local index of the left child (right = child + 1); self at leaves
};

struct TreeRef {
  int32_t depth;  // steps: to the last level (complete) or to the deepest leaf (breadth-first)
  bool complete;
  int64_t node;    // first node in cnodes / bnodes / snodes
  int64_t leaf;    // complete: first leaf in cleaves; breadth-first: first value in bvalue;
                   // sliced: first value in svalue
  bool sliced = false;
  int32_t n_inner = 0, n_leaves = 0, bits = 0;  // sliced trees only
  bool level_coded = false;  // sliced: leaf number = path bits by level (depth <= 8)
};

// ------------------------------------------------------------------ bit-sliced trees
//
// One-hot rows only. A word of 64 rows holds, per used column, the bit mask of the rows where
// the column is hot (built from the byte matrix of the walk, 16 rows per pmovmskb). A tree is
// then evaluated for 64 rows at once without walking: the mask of the rows reaching a node
// splits into `reach & hot` and `reach & ~hot` for its children (two AND per inner node per 64
// rows, whatever the depth), the rows reaching leaf l set bit b of their leaf number in plane
// b when l has bit b, and an 8 x 8 bit transpose turns the planes into one leaf number per row.
// Rows still receive their leaf values tree by tree in ensemble order, so sums are identical to
// the walk's. Cost per row and tree is about (6 inner + leaves * bits) / 64 + 8 operations
// instead of one dependent pair of loads per level: it wins for deep, unbalanced trees
// (LightGBM's leaf-wise ones) and for trees of at most a few hundred nodes; Layout picks per
// tree.
constexpr int64_t kWords = 4;  // 64-row words in a block (kBlock = 256 rows)
constexpr int32_t kSliceMaxLeaves = 256;

struct SliceNode {
  uint16_t col;   // used column * kWords (offset of the column's words in the block's planes)
  uint16_t me;    // reach slot of this node
  uint16_t cold;  // reach slots of the children
  uint16_t hot;
  uint16_t level;  // depth of the node (level-coded trees)
};

inline uint64_t transpose8(uint64_t x) {
  // Bit 8 i + j <-> bit 8 j + i (Hacker's Delight, transpose8 on a 64-bit word).
  uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
  return x ^ t ^ (t << 28);
}

// Dense rows: bins of type B compared with the threshold index in the low bits of the word.
template <class B>
struct DenseWalk {
  using X = B;
  using W = uint32_t;
  static constexpr int kBits = static_cast<int>(8 * sizeof(B));
  static constexpr uint32_t kMask = (uint32_t{1} << kBits) - 1;
  static uint32_t pass(int64_t) { return kMask; }  // column 0, never right
  static uint32_t right(W w, const X* xg, int r) {
    return static_cast<uint32_t>(xg[(w >> kBits) + r] > (w & kMask));
  }
};

// One-hot rows: a byte per used column (1 = hot); the word is the column's offset in a group.
// Column U (one past the used ones) is always 0: pass-through and leaf nodes read it.
template <class Wt>
struct HotWalk {
  using X = uint8_t;
  using W = Wt;
  static W pass(int64_t n_used) { return static_cast<W>(n_used * kGroup); }
  static uint32_t right(W w, const X* xg, int r) { return xg[w + r]; }
};

template <class P>
class Layout {
 public:
  using W = typename P::W;
  using X = typename P::X;

  void add(const ITree& t, W pass) {
    // Depth of every node (children come after their parent in any order we build).
    std::vector<int32_t> level(t.size(), 0);
    std::vector<int32_t> stack{0};
    int32_t depth = 0;
    while (!stack.empty()) {
      const int32_t i = stack.back();
      stack.pop_back();
      depth = std::max(depth, level[i]);
      if (t[i].left < 0) continue;
      level[t[i].left] = level[t[i].right] = level[i] + 1;
      stack.push_back(t[i].left);
      stack.push_back(t[i].right);
    }
    TreeRef ref{depth, depth <= kCompleteDepth, 0, 0};
    if (ref.complete) {
      ref.node = static_cast<int64_t>(cnodes_.size());
      ref.leaf = static_cast<int64_t>(cleaves_.size());
      const int64_t inner = (int64_t{1} << depth) - 1;
      cnodes_.resize(static_cast<size_t>(ref.node + inner), pass);
      cleaves_.resize(static_cast<size_t>(ref.leaf + inner + 1), 0.0);
      std::vector<std::array<int64_t, 3>> todo{{0, 0, 0}};  // (node, position, level)
      while (!todo.empty()) {
        const auto [i, pos, lev] = todo.back();
        todo.pop_back();
        const INode& nd = t[i];
        if (lev == depth) {
          cleaves_[ref.leaf + pos - inner] = nd.value;
          continue;
        }
        const bool leaf = nd.left < 0;
        cnodes_[ref.node + pos] = leaf ? pass : static_cast<W>(nd.word);
        todo.push_back({leaf ? i : nd.left, 2 * pos + 1, lev + 1});
        todo.push_back({leaf ? i : nd.right, 2 * pos + 2, lev + 1});
      }
    } else {
      // Breadth-first renumbering: the two children of a node are adjacent.
      ref.node = static_cast<int64_t>(bnodes_.size());
      ref.leaf = static_cast<int64_t>(bvalue_.size());
      std::vector<int32_t> order{0};
      std::vector<int32_t> pos(t.size(), -1);
      pos[0] = 0;
      for (size_t q = 0; q < order.size(); ++q) {
        const INode& nd = t[order[q]];
        if (nd.left < 0) continue;
        pos[nd.left] = static_cast<int32_t>(order.size());
        order.push_back(nd.left);
        pos[nd.right] = static_cast<int32_t>(order.size());
        order.push_back(nd.right);
      }
      for (size_t q = 0; q < order.size(); ++q) {
        const INode& nd = t[order[q]];
        const int32_t me = static_cast<int32_t>(q);
        if (nd.left < 0) {
          bnodes_.push_back({pass, me});
        } else {
          bnodes_.push_back({static_cast<W>(nd.word), pos[nd.left]});
        }
        bvalue_.push_back(nd.left < 0 ? nd.value : 0.0);
      }
    }
    trees_.push_back(ref);
  }

  // Estimated nanoseconds per row of walking tree `t` as add() lays it out, and of its
  // bit-sliced evaluation (< 0 when it cannot be sliced); fitted on one core on one-hot
  // ensembles of LightGBM (leaf-wise, 63 leaves, depth 10-23: walk about 13, sliced 3) and
  // XGBoost (depth 8, 100-200 inner nodes: walk about 8.5, sliced 5.5-9.5).
  static int32_t depth_of(const ITree& t) {
    int32_t depth = 0;
    std::vector<std::pair<int32_t, int32_t>> stack{{0, 0}};
    while (!stack.empty()) {
      const auto [i, d] = stack.back();
      stack.pop_back();
      depth = std::max(depth, d);
      if (t[i].left >= 0) {
        stack.push_back({t[i].left, d + 1});
        stack.push_back({t[i].right, d + 1});
      }
    }
    return depth;
  }

  static double walk_cost(int32_t depth) {
    return depth <= kCompleteDepth ? 1.04 * depth : 0.85 * depth + 0.5;
  }

  static double slice_cost(const ITree& t, int32_t depth) {
    const int64_t n = static_cast<int64_t>(t.size());
    const int64_t leaves = (n + 1) / 2, inner = n - leaves;
    if (leaves > kSliceMaxLeaves || n < 3) return -1.0;
    if (depth <= 8) return 1.0 + 0.05 * static_cast<double>(inner);  // level-coded
    int bits = 0;
    while ((int64_t{1} << bits) < leaves) ++bits;
    return 1.0 + 0.01 * static_cast<double>(inner + leaves * bits / 2);
  }

  // Adds tree t for bit-sliced evaluation (slice_cost(t) >= 0). Columns: word / kGroup.
  // Leaf numbers: trees of depth <= 8 use the path (bit l set when the row went hot at level
  // l; the value table has 2^depth entries, zero where no leaf is), so that the planes come
  // from the inner nodes directly; deeper trees number their leaves 0..L-1 and OR the leaves'
  // masks into the planes of their set bits.
  void add_sliced(const ITree& t) {
    TreeRef ref{0, false, static_cast<int64_t>(snodes_.size()), static_cast<int64_t>(svalue_.size())};
    ref.sliced = true;
    // Pre-order, cold child first: leaves get numbers 0..L-1 in that order, inner nodes the
    // reach slots L, L + 1, ... (parents before children), the root L.
    std::vector<int32_t> order, stack{0}, level(t.size(), 0), code(t.size(), 0);
    int32_t n_leaves = 0, n_inner = 0, depth = 0;
    while (!stack.empty()) {
      const int32_t i = stack.back();
      stack.pop_back();
      order.push_back(i);
      depth = std::max(depth, level[i]);
      if (t[i].left < 0) {
        ++n_leaves;
      } else {
        ++n_inner;
        for (int32_t c : {t[i].left, t[i].right}) level[c] = level[i] + 1;
        code[t[i].left] = code[i];
        code[t[i].right] = level[i] < 31 ? code[i] | (int32_t{1} << level[i]) : 0;
        stack.push_back(t[i].right);
        stack.push_back(t[i].left);
      }
    }
    ref.level_coded = depth <= 8;
    std::vector<int32_t> slot(t.size(), -1);
    int32_t nl = 0, ni = n_leaves;
    for (int32_t i : order) slot[i] = t[i].left < 0 ? nl++ : ni++;
    if (ref.level_coded) svalue_.resize(svalue_.size() + (size_t{1} << depth), 0.0);
    for (int32_t i : order) {
      if (t[i].left < 0) {
        if (ref.level_coded) {
          svalue_[static_cast<size_t>(ref.leaf + code[i])] = t[i].value;
        } else {
          svalue_.push_back(t[i].value);
        }
        continue;
      }
      snodes_.push_back({static_cast<uint16_t>(t[i].word / kGroup * kWords),
                         static_cast<uint16_t>(slot[i]), static_cast<uint16_t>(slot[t[i].left]),
                         static_cast<uint16_t>(slot[t[i].right]), static_cast<uint16_t>(level[i])});
    }
    ref.n_inner = n_inner;
    ref.n_leaves = n_leaves;
    if (ref.level_coded) {
      ref.bits = depth;
    } else {
      while ((int32_t{1} << ref.bits) < n_leaves) ++ref.bits;
    }
    trees_.push_back(ref);
  }

  bool any_sliced() const {
    return std::any_of(trees_.begin(), trees_.end(), [](const TreeRef& t) { return t.sliced; });
  }
  bool any_walked() const {
    return std::any_of(trees_.begin(), trees_.end(), [](const TreeRef& t) { return !t.sliced; });
  }

  // acc[r] = sum over the trees of the leaf values of the m <= kBlock rows in xt: whole groups
  // of kGroup rows, column-major within a group (xt[(q * stride) + c * kGroup + r]). Sliced
  // trees read `planes` instead: [used column][kWords] hot masks (only with sliced trees).
  void walk(const X* xt, int64_t m, int64_t stride, double* acc,
            const uint64_t* planes = nullptr) const {
    const int64_t groups = (m + kGroup - 1) / kGroup;
    for (int64_t r = 0; r < kBlock; ++r) acc[r] = 0.0;
    for (const TreeRef& t : trees_) {
      if (t.sliced) {
        sliced(snodes_.data() + t.node, svalue_.data() + t.leaf, t, planes, m, acc);
      } else if (t.complete) {
        const W* nodes = cnodes_.data() + t.node;
        const double* leaves = cleaves_.data() + t.leaf;
        for (int64_t q = 0; q < groups; ++q) {
          complete(nodes, leaves, t.depth, xt + q * stride, acc + q * kGroup);
        }
      } else {
        const BfsNode<W>* nodes = bnodes_.data() + t.node;
        const double* values = bvalue_.data() + t.leaf;
        for (int64_t q = 0; q < groups; ++q) {
          bfs(nodes, values, t.depth, xt + q * stride, acc + q * kGroup);
        }
      }
    }
  }

 private:
  static void complete(const W* nodes, const double* leaves, int32_t depth, const X* xg,
                       double* acc) {
    uint32_t idx[kGroup];
#pragma GCC unroll 16
    for (int r = 0; r < kGroup; ++r) idx[r] = 0;
    for (int32_t d = 0; d < depth; ++d) {
#pragma GCC unroll 16
      for (int r = 0; r < kGroup; ++r) idx[r] = 2 * idx[r] + 1 + P::right(nodes[idx[r]], xg, r);
    }
    const uint32_t first = (uint32_t{1} << depth) - 1;
#pragma GCC unroll 16
    for (int r = 0; r < kGroup; ++r) acc[r] += leaves[idx[r] - first];
  }

  // All kWords words of a block at once (independent chains for the out-of-order core; words
  // past the rows have zero planes and are computed but not added).
  static void sliced(const SliceNode* nodes, const double* values, const TreeRef& t,
                     const uint64_t* planes, int64_t rows, double* acc) {
    uint64_t reach[2 * kSliceMaxLeaves][kWords];
    const int32_t L = t.n_leaves;
    for (int64_t w = 0; w < kWords; ++w) reach[L][w] = ~uint64_t{0};
    uint64_t pl[8][kWords] = {};
    if (t.level_coded) {
      for (int32_t k = 0; k < t.n_inner; ++k) {
        const SliceNode nd = nodes[k];
        const uint64_t* h = planes + nd.col;
        uint64_t* p = pl[nd.level];
#pragma GCC unroll 4
        for (int64_t w = 0; w < kWords; ++w) {
          const uint64_t x = reach[nd.me][w], hot = x & h[w];
          reach[nd.hot][w] = hot;
          reach[nd.cold][w] = x & ~h[w];
          p[w] |= hot;
        }
      }
    } else {
      for (int32_t k = 0; k < t.n_inner; ++k) {
        const SliceNode nd = nodes[k];
        const uint64_t* h = planes + nd.col;
#pragma GCC unroll 4
        for (int64_t w = 0; w < kWords; ++w) {
          const uint64_t x = reach[nd.me][w];
          reach[nd.hot][w] = x & h[w];
          reach[nd.cold][w] = x & ~h[w];
        }
      }
    }
    for (int b = 0; b < (t.level_coded ? 0 : t.bits); ++b) {
      const int32_t run = int32_t{1} << b;
      uint64_t p[kWords] = {0, 0, 0, 0};
      for (int32_t start = run; start < L; start += 2 * run) {
        const int32_t end = std::min(start + run, L);
        for (int32_t l = start; l < end; ++l) {
#pragma GCC unroll 4
          for (int64_t w = 0; w < kWords; ++w) p[w] |= reach[l][w];
        }
      }
      for (int64_t w = 0; w < kWords; ++w) pl[b][w] = p[w];
    }
    for (int64_t g = 0; g * 8 < rows; ++g) {
      const int64_t w = g / 8;
      const int sh = static_cast<int>(8 * (g % 8));
      uint64_t x = 0;
      for (int b = 0; b < t.bits; ++b) x |= ((pl[b][w] >> sh) & 0xFF) << (8 * b);
      x = transpose8(x);
      double* a = acc + 8 * g;
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) a[j] += values[(x >> (8 * j)) & 0xFF];
    }
  }

  static void bfs(const BfsNode<W>* nodes, const double* values, int32_t depth, const X* xg,
                  double* acc) {
    int32_t idx[kGroup];
#pragma GCC unroll 16
    for (int r = 0; r < kGroup; ++r) idx[r] = 0;
    for (int32_t d = 0; d < depth; ++d) {
#pragma GCC unroll 16
      for (int r = 0; r < kGroup; ++r) {
        const BfsNode<W> nd = nodes[idx[r]];
        idx[r] = nd.child + static_cast<int32_t>(P::right(nd.word, xg, r));
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < kGroup; ++r) acc[r] += values[idx[r]];
  }

  std::vector<W> cnodes_;
  std::vector<double> cleaves_;
  std::vector<BfsNode<W>> bnodes_;
  std::vector<double> bvalue_;
  std::vector<SliceNode> snodes_;
  std::vector<double> svalue_;
  std::vector<TreeRef> trees_;
};

// Thread-local scratch for a block's inputs (reused across calls, bounded by kBlock rows).
template <class X>
std::vector<X>& block_scratch(size_t n) {
  thread_local std::vector<X> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

// Threshold of node i in the comparison domain ("right when v > t").
double node_threshold(const CompactTrees& t, size_t i) {
  return t.float32_inputs ? static_cast<double>(t.thr32[i]) : t.thr64[i];
}

int32_t tree_end(const CompactTrees& t, size_t k) {
  return k + 1 < t.root.size() ? t.root[k + 1] : static_cast<int32_t>(t.feature.size());
}

// Dense rows -> bins -> binned walk.
class DenseBins {
 public:
  virtual ~DenseBins() = default;
  // y[i] = base + sum of leaf values for standardised rows xs [n, F].
  virtual void eval(const double* xs, int64_t n, int64_t F, double base, double* y) const = 0;
};

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
        const auto k_thr = static_cast<uint32_t>(std::lower_bound(lo, hi, node_threshold(t, i)) - lo);
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
        for (int r = 0; r < kGroup; ++r) pos[r] = (t[pos[r] + half] < v[r]) ? pos[r] + half : pos[r];
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

// One-hot rows -> pre-decided splits -> hot walk.
class HotBins {
 public:
  virtual ~HotBins() = default;
  virtual void eval(const int32_t* hot, int64_t n, int64_t k, double base, double* y) const = 0;
};

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
    if ((static_cast<int64_t>(U) + 1) * kGroup > static_cast<int64_t>(std::numeric_limits<W>::max())) {
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
      const int32_t depth = Layout<P>::depth_of(tree);
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
    std::vector<uint8_t>& xt = block_scratch<uint8_t>(static_cast<size_t>(kBlock / kGroup * stride));
    const int32_t* slot = slot_.data();
    std::vector<uint64_t>& planes = block_scratch<uint64_t>(static_cast<size_t>(std::max<int64_t>(1, n_used_ * kWords)));
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
            const int32_t fi = static_cast<uint32_t>(f) < static_cast<uint32_t>(F) ? f : static_cast<int32_t>(F);
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

// ------------------------------------------------------------------ float walk (fallback)
//
// Used when the bins do not fit 16 bits (a feature with more than 65534 distinct thresholds):
// a group of rows walks every tree in lock-step for its full depth, comparing float32 or
// float64 values with the thresholds of the compact breadth-first layout.
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

class Trees final : public Model {
 public:
  Trees(Common c, const TreesParams& p) : Model(std::move(c)) {
    CompactTrees t = compact_trees(p, n_features());
    base_ = t.base;
    int64_t steps = 0;
    for (int32_t d : t.depth) steps += std::max(1, d);
    min_piece_ = std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(1, steps), 64, 4096);
    if (!(hot_ = HotBinsT<uint16_t>::make(t, common_, p.hot_layout))) {
      hot_ = HotBinsT<uint32_t>::make(t, common_, p.hot_layout);
    }
    if ((dense_ = DenseBinsT<uint8_t>::make(t, n_features()))) return;
    if ((dense_ = DenseBinsT<uint16_t>::make(t, n_features()))) return;
    f32_ = t.float32_inputs;
    values_ = std::move(t.value);
    for (size_t i = 0; i < t.feature.size(); ++i) {
      if (f32_) n32_.push_back({t.thr32[i], t.feature[i], t.child[i]});
      else n64_.push_back({t.thr64[i], t.feature[i], t.child[i]});
    }
    for (size_t k = 0; k < t.root.size(); ++k) float_trees_.push_back({t.root[k], t.depth[k]});
  }
  const char* kind() const override { return "trees"; }
  bool accepts_hot() const override { return hot_ != nullptr; }
  int64_t min_piece() const override { return min_piece_; }

  void predict_hot(const int32_t* hot, int64_t n, int64_t k, double* out) const override {
    if (!hot_) throw std::logic_error("trees: no one-hot path");
    hot_->eval(hot, n, k, base_, out);
    finish(out, n);
  }

 protected:
  void eval(double* xs, int64_t n, double* y) const override {
    const int64_t F = n_features();
    if (dense_) return dense_->eval(xs, n, F, base_, y);
    constexpr int64_t kFloatBlock = kGroup * kFloatGroups;
    for (int64_t i = 0; i < n; ++i) y[i] = base_;
    if (f32_) {
      std::vector<float> xt(static_cast<size_t>(kFloatBlock * F));
      for (int64_t b = 0; b < n; b += kFloatBlock) {
        walk_block(n32_.data(), values_.data(), float_trees_, xs + b * F,
                   std::min(kFloatBlock, n - b), F, xt.data(), y + b);
      }
    } else {
      std::vector<double> xt(static_cast<size_t>(kFloatBlock * F));
      for (int64_t b = 0; b < n; b += kFloatBlock) {
        walk_block(n64_.data(), values_.data(), float_trees_, xs + b * F,
                   std::min(kFloatBlock, n - b), F, xt.data(), y + b);
      }
    }
  }

 private:
  double base_ = 0.0;
  int64_t min_piece_ = 64;
  std::unique_ptr<HotBins> hot_;
  std::unique_ptr<DenseBins> dense_;
  bool f32_ = false;
  std::vector<Node<double>> n64_;
  std::vector<Node<float>> n32_;
  std::vector<double> values_;
  std::vector<FloatTreeInfo> float_trees_;
};

}  // namespace

CompactTrees compact_trees(const TreesParams& p, int64_t F) {
    CompactTrees out;
    out.base = p.base;
    out.float32_inputs = p.float32_inputs;
    const int64_t M = static_cast<int64_t>(p.feature.size());
    if (M == 0) throw std::invalid_argument("trees: the ensemble has no nodes");
    if (static_cast<int64_t>(p.threshold.size()) != M ||
        static_cast<int64_t>(p.left.size()) != M || static_cast<int64_t>(p.right.size()) != M ||
        static_cast<int64_t>(p.value.size()) != M) {
      throw std::invalid_argument(
          "trees: feature, threshold, left, right and value must all have the same length");
    }
    if (M >= std::numeric_limits<int32_t>::max() / 2) throw std::invalid_argument("trees: too many nodes");
    if (p.roots.empty()) throw std::invalid_argument("trees: the ensemble has no trees (roots is empty)");
    if (!std::isfinite(p.base)) throw std::invalid_argument("trees: base must be finite");

    std::vector<char> seen(static_cast<size_t>(M), 0);
    std::vector<int32_t> order, depth_of;  // breadth-first old ids of one tree, their depth
    std::vector<int32_t> new_id(static_cast<size_t>(M), -1);
    const double inf = std::numeric_limits<double>::infinity();
    for (size_t t = 0; t < p.roots.size(); ++t) {
      const int32_t root = p.roots[t];
      if (root < 0 || root >= M) {
        throw std::invalid_argument("trees: root " + std::to_string(t) + " is " +
                                    std::to_string(root) + ", out of range [0, " +
                                    std::to_string(M) + ")");
      }
      order.assign(1, root);
      depth_of.assign(1, 0);
      if (seen[root]) throw std::invalid_argument("trees: node " + std::to_string(root) + " is reached twice");
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
            throw std::invalid_argument("trees: leaf " + std::to_string(i) + " has a non-finite value");
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
          if (new_id[p.right[i]] != child + 1) throw std::logic_error("trees: layout invariant broken");
          const double t = p.threshold[i];
          feat = p.feature[i];
          t64 = p.rule_lt ? std::nextafter(t, -inf) : t;
          t32 = p.rule_lt ? strictly_below_f32(t) : below_or_equal_f32(t);
        }
        if (out.float32_inputs) out.thr32.push_back(t32); else out.thr64.push_back(t64);
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


std::unique_ptr<Model> make_trees(Common common, TreesParams p) {
  return std::make_unique<Trees>(std::move(common), p);
}

}  // namespace esm::predict
