// Tree layouts of the CPU tree evaluators: building them and walking a block of rows (see
// trees_layout.hpp).
#include "trees_layout.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace esm::predict::trees {

std::vector<int32_t> node_levels(const ITree& t, int32_t* depth) {
  std::vector<int32_t> level(t.size(), 0);
  int32_t deepest = 0;
  for (size_t i = 0; i < t.size(); ++i) {  // children come after their parent
    deepest = std::max(deepest, level[i]);
    if (t[i].left >= 0) level[t[i].left] = level[t[i].right] = level[i] + 1;
  }
  *depth = deepest;
  return level;
}

namespace {

inline uint64_t transpose8(uint64_t x) {
  // Bit 8 i + j <-> bit 8 j + i (Hacker's Delight, transpose8 on a 64-bit word).
  uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
  return x ^ t ^ (t << 28);
}

template <class P>
void walk_complete(const typename P::W* nodes, const double* leaves, int32_t depth,
                   const typename P::X* xg, double* acc) {
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

template <class P>
void walk_bfs(const BfsNode<typename P::W>* nodes, const double* values, int32_t depth,
              const typename P::X* xg, double* acc) {
  int32_t idx[kGroup];
#pragma GCC unroll 16
  for (int r = 0; r < kGroup; ++r) idx[r] = 0;
  for (int32_t d = 0; d < depth; ++d) {
#pragma GCC unroll 16
    for (int r = 0; r < kGroup; ++r) {
      const BfsNode<typename P::W> nd = nodes[idx[r]];
      idx[r] = nd.child + static_cast<int32_t>(P::right(nd.word, xg, r));
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < kGroup; ++r) acc[r] += values[idx[r]];
}

// All kWords words of a block at once (independent chains for the out-of-order core; words
// past the rows have zero planes and are computed but not added).
void walk_sliced(const SliceNode* nodes, const double* values, const TreeRef& t,
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

}  // namespace

template <class P>
void Layout<P>::add(const ITree& t, W pass) {
  int32_t depth = 0;
  node_levels(t, &depth);
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

template <class P>
double Layout<P>::walk_cost(int32_t depth) {
  return depth <= kCompleteDepth ? 1.04 * depth : 0.85 * depth + 0.5;
}

template <class P>
double Layout<P>::slice_cost(const ITree& t, int32_t depth) {
  const int64_t n = static_cast<int64_t>(t.size());
  const int64_t leaves = (n + 1) / 2, inner = n - leaves;
  if (leaves > kSliceMaxLeaves || n < 3) return -1.0;
  if (depth <= 8) return 1.0 + 0.05 * static_cast<double>(inner);  // level-coded
  int bits = 0;
  while ((int64_t{1} << bits) < leaves) ++bits;
  return 1.0 + 0.01 * static_cast<double>(inner + leaves * bits / 2);
}

// Leaf numbers: trees of depth <= 8 use the path (bit l set when the row went hot at level l;
// the value table has 2^depth entries, zero where no leaf is), so that the planes come from the
// inner nodes directly; deeper trees number their leaves 0..L-1 and OR the leaves' masks into
// the planes of their set bits.
template <class P>
void Layout<P>::add_sliced(const ITree& t) {
  TreeRef ref{0, false, static_cast<int64_t>(snodes_.size()), static_cast<int64_t>(svalue_.size())};
  ref.sliced = true;
  int32_t depth = 0;
  const std::vector<int32_t> level = node_levels(t, &depth);
  // Pre-order, cold child first: leaves get numbers 0..L-1 in that order, inner nodes the
  // reach slots L, L + 1, ... (parents before children), the root L.
  std::vector<int32_t> order, stack{0}, code(t.size(), 0);
  int32_t n_leaves = 0, n_inner = 0;
  while (!stack.empty()) {
    const int32_t i = stack.back();
    stack.pop_back();
    order.push_back(i);
    if (t[i].left < 0) {
      ++n_leaves;
    } else {
      ++n_inner;
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

template <class P>
bool Layout<P>::any_sliced() const {
  return std::any_of(trees_.begin(), trees_.end(), [](const TreeRef& t) { return t.sliced; });
}

template <class P>
void Layout<P>::walk(const X* xt, int64_t m, int64_t stride, double* acc,
                     const uint64_t* planes) const {
  const int64_t groups = (m + kGroup - 1) / kGroup;
  for (int64_t r = 0; r < kBlock; ++r) acc[r] = 0.0;
  for (const TreeRef& t : trees_) {
    if (t.sliced) {
      walk_sliced(snodes_.data() + t.node, svalue_.data() + t.leaf, t, planes, m, acc);
    } else if (t.complete) {
      const W* nodes = cnodes_.data() + t.node;
      const double* leaves = cleaves_.data() + t.leaf;
      for (int64_t q = 0; q < groups; ++q) {
        walk_complete<P>(nodes, leaves, t.depth, xt + q * stride, acc + q * kGroup);
      }
    } else {
      const BfsNode<W>* nodes = bnodes_.data() + t.node;
      const double* values = bvalue_.data() + t.leaf;
      for (int64_t q = 0; q < groups; ++q) {
        walk_bfs<P>(nodes, values, t.depth, xt + q * stride, acc + q * kGroup);
      }
    }
  }
}

template class Layout<DenseWalk<uint8_t>>;
template class Layout<DenseWalk<uint16_t>>;
template class Layout<HotWalk<uint16_t>>;
template class Layout<HotWalk<uint32_t>>;

}  // namespace esm::predict::trees
