// Tree layouts of the CPU tree evaluators (internal to csrc/cpu/trees_*.cpp).
//
// An evaluator (trees_dense.cpp: dense rows, trees_hot.cpp: one-hot rows) turns every tree of
// the compact ensemble into an ITree whose nodes carry a packed split word, then lays the trees
// out in a Layout for its walk policy, which evaluates blocks of kBlock rows.
//
// Walks: trees of depth <= kCompleteDepth are stored as complete binary trees without child
// pointers (a step is i = 2 i + 1 + right); a leaf above the last level is continued by
// pass-through nodes that always go left. Deeper trees keep the breadth-first layout with a
// child index per node (leaves point to themselves) and are walked for their full depth. A
// group of kGroup rows walks one tree in lock-step (their indices stay in registers), blocks of
// kBlock rows stay in cache while every tree is applied to them.
//
// Bit-sliced trees (one-hot rows only). A word of 64 rows holds, per used column, the bit mask
// of the rows where the column is hot (built from the byte matrix of the walk, 16 rows per
// pmovmskb). A tree is then evaluated for 64 rows at once without walking: the mask of the rows
// reaching a node splits into `reach & hot` and `reach & ~hot` for its children (two AND per
// inner node per 64 rows, whatever the depth), the rows reaching leaf l set bit b of their leaf
// number in plane b when l has bit b, and an 8 x 8 bit transpose turns the planes into one leaf
// number per row. Rows still receive their leaf values tree by tree in ensemble order, so sums
// are identical to the walk's. Cost per row and tree is about (6 inner + leaves * bits) / 64 + 8
// operations instead of one dependent pair of loads per level: it wins for deep, unbalanced
// trees (LightGBM's leaf-wise ones) and for trees of at most a few hundred nodes; the one-hot
// evaluator picks per tree (walk_cost, slice_cost).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace esm::predict::trees {

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
constexpr int64_t kWords = 4;  // 64-row words in a block (kBlock = 256 rows)
constexpr int32_t kSliceMaxLeaves = 256;

// A tree before layout: node 0 is the root; leaves have left = right = -1; children come
// after their parent. `word` is the packed split (its meaning is the walk policy's).
struct INode {
  uint32_t word;
  int32_t left, right;
  double value;
};
using ITree = std::vector<INode>;

// Depth of every node of t (the root has 0) and, through `depth`, the depth of the tree.
std::vector<int32_t> node_levels(const ITree& t, int32_t* depth);

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

template <class W>
struct BfsNode {
  W word;
  int32_t child;  // tree-local index of the left child (right = child + 1); self at leaves
};

struct TreeRef {
  int32_t depth;  // steps: to the last level (complete) or to the deepest leaf (breadth-first)
  bool complete;
  int64_t node;  // first node in cnodes / bnodes / snodes
  int64_t leaf;  // complete: first leaf in cleaves; breadth-first: first value in bvalue;
                 // sliced: first value in svalue
  bool sliced = false;
  int32_t n_inner = 0, n_leaves = 0, bits = 0;  // sliced trees only
  bool level_coded = false;  // sliced: leaf number = path bits by level (depth <= 8)
};

struct SliceNode {
  uint16_t col;   // used column * kWords (offset of the column's words in the block's planes)
  uint16_t me;    // reach slot of this node
  uint16_t cold;  // reach slots of the children
  uint16_t hot;
  uint16_t level;  // depth of the node (level-coded trees)
};

// The trees of an ensemble laid out for walk policy P (instantiated in trees_layout.cpp for
// DenseWalk<uint8_t>, DenseWalk<uint16_t>, HotWalk<uint16_t> and HotWalk<uint32_t>).
template <class P>
class Layout {
 public:
  using W = typename P::W;
  using X = typename P::X;

  // Adds tree t for the walk; `pass` is the word of a node that never goes right.
  void add(const ITree& t, W pass);

  // Adds tree t for bit-sliced evaluation (slice_cost(t) >= 0). Columns: word / kGroup.
  void add_sliced(const ITree& t);

  // Estimated nanoseconds per row of walking a tree of this depth as add() lays it out, and of
  // the bit-sliced evaluation of tree t (< 0 when it cannot be sliced); fitted on one core on
  // one-hot ensembles of LightGBM (leaf-wise, 63 leaves, depth 10-23: walk about 13, sliced 3)
  // and XGBoost (depth 8, 100-200 inner nodes: walk about 8.5, sliced 5.5-9.5).
  static double walk_cost(int32_t depth);
  static double slice_cost(const ITree& t, int32_t depth);

  bool any_sliced() const;

  // acc[r] = sum over the trees of the leaf values of the m <= kBlock rows in xt: whole groups
  // of kGroup rows, column-major within a group (xt[(q * stride) + c * kGroup + r]). Sliced
  // trees read `planes` instead: [used column][kWords] hot masks (only with sliced trees).
  void walk(const X* xt, int64_t m, int64_t stride, double* acc,
            const uint64_t* planes = nullptr) const;

 private:
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

}  // namespace esm::predict::trees
