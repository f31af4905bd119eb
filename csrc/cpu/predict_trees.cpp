// Tree ensembles (random forest, extra trees, gradient boosting, LightGBM/XGBoost converted).
//
// compact_trees (trees_compact.cpp) validates the arrays and renumbers every tree
// breadth-first with thresholds rewritten to one rule; the CUDA kernel walks that layout. On
// the CPU the ensemble is then re-laid out for the evaluators of trees_eval.hpp: binned dense
// rows (trees_dense.cpp, or the float walk of trees_float.cpp when the bins do not fit) and
// one-hot rows (trees_hot.cpp), on the layouts of trees_layout.hpp.
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <utility>

#include "esm/predict.hpp"
#include "trees_eval.hpp"

namespace esm::predict {
namespace {

class Trees final : public Model {
 public:
  Trees(Common c, const TreesParams& p) : Model(std::move(c)) {
    CompactTrees t = compact_trees(p, n_features());
    base_ = t.base;
    int64_t steps = 0;
    for (int32_t d : t.depth) steps += std::max(1, d);
    min_piece_ = std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(1, steps), 64, 4096);
    hot_ = trees::make_hot_bins(t, common_, p.hot_layout);
    dense_ = trees::make_dense_bins(t, n_features());
    if (!dense_) float_ = trees::make_float_walk(std::move(t));
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
    if (dense_) {
      dense_->eval(xs, n, n_features(), base_, y);
    } else {
      float_->eval(xs, n, n_features(), base_, y);
    }
  }

 private:
  double base_ = 0.0;
  int64_t min_piece_ = 64;
  std::unique_ptr<trees::HotBins> hot_;
  std::unique_ptr<trees::DenseBins> dense_;
  std::unique_ptr<trees::FloatWalk> float_;
};

}  // namespace

std::unique_ptr<Model> make_trees(Common common, TreesParams p) {
  return std::make_unique<Trees>(std::move(common), p);
}

}  // namespace esm::predict
