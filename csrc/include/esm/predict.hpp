// Compiled surrogate models: plain-array regressors evaluated on chunks of feature rows,
// multi-threaded, with memory bounded by the chunk size.
//
// Every model sees raw feature rows X [n, F] (float64, row-major), standardises them
// x' = (x - x_mean) / x_scale, evaluates its regressor y = f(x') and maps y back by the target
// transform ("log": exp(y), "identity": y). Families (array layout shared with the Python
// model file, see python/esm/predictor/model.py):
//   linear  y = intercept + coef . x'
//   trees   y = base + sum over trees of value[leaf(tree, x')]
//   mlp     hidden layers act(a W + b), linear output
//   knn     mean (or inverse-distance weighted mean) of the k nearest training targets
//   gp      y = y_mean + y_std * sum_i constant * exp(-0.5 |(x' - X_i) / l|^2) * alpha_i
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace esm::predict {

enum class Target { kIdentity = 0, kLog = 1 };
enum class Activation { kIdentity = 0, kRelu = 1, kTanh = 2, kLogistic = 3 };

// What every family shares: feature count, standardisation and target transform.
struct Common {
  int64_t n_features = 0;
  std::vector<double> x_mean, x_scale;  // [F] each
  Target target = Target::kIdentity;
};

// Throws std::invalid_argument unless c has F > 0 features, F finite means and F non-zero,
// non-NaN scales (an infinite scale switches a column off: x' = 0).
void check_common(const Common& c);

struct LinearParams {
  std::vector<double> coef;  // [F]
  double intercept = 0.0;
};

// Tree ensemble as parallel node arrays (sklearn's tree_ layout). Leaves have left = right =
// -1. Threshold rule: "le" goes left when x' <= threshold, "lt" when x' < threshold. When
// float32_inputs is set, x' is rounded to float32 before the comparison (what scikit-learn and
// XGBoost do); otherwise the comparison is in float64 (LightGBM, HistGradientBoosting).
// Layout of one-hot tree evaluation: auto picks per tree between the walk and the bit-sliced
// evaluation by an operation count; walk / slice force one (slice where a tree allows: at most
// 256 leaves). Results are identical; the knob exists for tests and measurements.
enum class HotLayout { kAuto = 0, kWalk = 1, kSlice = 2 };

struct TreesParams {
  std::vector<int32_t> feature, left, right, roots;  // [M], [M], [M], [T]
  std::vector<double> threshold, value;              // [M], [M]
  double base = 0.0;
  bool rule_lt = false;
  bool float32_inputs = false;
  HotLayout hot_layout = HotLayout::kAuto;
};

struct MlpParams {
  std::vector<std::vector<double>> weights;  // L matrices, [in, out] row-major
  std::vector<std::vector<double>> biases;   // L vectors [out]
  std::vector<int64_t> sizes;                // L + 1 layer widths, sizes[0] = F, sizes[L] = 1
  Activation activation = Activation::kRelu;
};

struct KnnParams {
  std::vector<double> X;  // [n, F] standardised training rows
  std::vector<double> y;  // [n]
  int64_t n = 0;
  int64_t k = 5;
  bool distance_weights = false;
};

struct GpParams {
  std::vector<double> X;             // [n, F] standardised training rows
  std::vector<double> alpha;         // [n]
  std::vector<double> length_scale;  // [F]
  int64_t n = 0;
  double constant = 1.0, y_mean = 0.0, y_std = 1.0;
};

// Trees renumbered breadth-first into one node array (structure of arrays) where the two
// children of a node are adjacent: a step is `i = child[i] + (x'[feature[i]] > thr[i])`. Leaves
// point to themselves with threshold +inf; tree t is walked depth[t] steps from root[t]. The
// thresholds are rewritten so that "go right when x > thr" reproduces the original rule (see
// predict_trees.cpp). Built and validated by compact_trees (throws std::invalid_argument).
struct CompactTrees {
  bool float32_inputs = false;
  std::vector<double> thr64;  // used when !float32_inputs
  std::vector<float> thr32;   // used when float32_inputs
  std::vector<int32_t> feature, child;
  std::vector<double> value;  // leaf value per node (0 for inner nodes)
  std::vector<int32_t> root, depth;
  double base = 0.0;
};
CompactTrees compact_trees(const TreesParams& p, int64_t n_features);

// Graph network over a fixed cell DAG (BRP-NAS style): node features
// H0[v] = concat(x'[index[v, c]] (0 where index is -1), node_const[v]),
// H_{l+1} = relu(A H_l W_l + b_l), y = mean_v(H_L) . w_out + b_out.
struct GcnParams {
  std::vector<double> adjacency;    // [V, V]
  std::vector<int32_t> node_index;  // [V, C]
  std::vector<double> node_const;   // [V, T] (T may be 0)
  int64_t V = 0, C = 0, T = 0;
  std::vector<std::vector<double>> weights, biases;  // [in, out], [out]
  std::vector<int64_t> sizes;                        // C, hidden widths...
  std::vector<double> w_out;                         // [H]
  double b_out = 0.0;
};

// The meta values of the model file (see python/esm/predictor/model.py) as the core's enums;
// an unknown name throws std::invalid_argument naming the known ones.
Target parse_target(const std::string& name);               // "log", "identity"
Activation parse_activation(const std::string& name);       // "relu", "tanh", ...
bool parse_rule_lt(const std::string& rule);                // "le" (false), "lt" (true)
bool parse_float32_inputs(const std::string& input_dtype);  // "float32" (true), "float64"
HotLayout parse_hot_layout(const std::string& name);        // "auto", "walk", "slice"

class Model {
 public:
  explicit Model(Common common);
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  int64_t n_features() const { return common_.n_features; }
  const Common& common() const { return common_; }
  virtual const char* kind() const = 0;

  // Evaluates n rows of raw features on the calling thread. `x` is scratch of the same size
  // as X that the model may overwrite ([n, F]); X itself is only read.
  void predict_rows(const double* X, int64_t n, double* x, double* out) const;

  // Threaded evaluation of n rows: pieces of at most `chunk` rows, `threads` workers (0 = all
  // cores). Extra memory: threads * min(chunk, 512) * F doubles.
  void predict(const double* X, int64_t n, double* out, int threads, int64_t chunk) const;

  // Whether the model's standardised prediction is an affine function of the raw features;
  // then `affine` receives [F + 1] weights (bias last) with standardisation folded in.
  virtual bool affine(std::vector<double>* weights) const;

  // One-hot rows without a dense feature matrix: row i has raw value 1 in the columns
  // hot[i * k + j] (j < k; entries outside [0, F) are skipped) and 0 in every other column.
  // Models with such a path (trees) return true from accepts_hot and then predict_hot gives
  // the same n predictions as predict_rows on the dense rows (target map applied).
  virtual bool accepts_hot() const { return false; }
  virtual void predict_hot(const int32_t* hot, int64_t n, int64_t k, double* out) const;

  // Fewest rows worth a worker thread of their own (a thread start costs more than a few
  // hundred rows of a cheap model).
  virtual int64_t min_piece() const { return 64; }

 protected:
  // Applies the target transform to n standardised predictions in place.
  void finish(double* out, int64_t n) const;

  // y = f(x') for n standardised rows xs [n, F] (may be overwritten), before the target map.
  virtual void eval(double* xs, int64_t n, double* y) const = 0;

  Common common_;
};

std::unique_ptr<Model> make_linear(Common common, LinearParams p);
std::unique_ptr<Model> make_trees(Common common, TreesParams p);
std::unique_ptr<Model> make_mlp(Common common, MlpParams p);
std::unique_ptr<Model> make_knn(Common common, KnnParams p);
std::unique_ptr<Model> make_gp(Common common, GpParams p);
std::unique_ptr<Model> make_gcn(Common common, GcnParams p);

// Picks the piece size for n rows over `threads` workers: at most `chunk` rows, and at least
// `min_rows` (when n and chunk allow), so that small batches do not start idle threads.
int64_t piece_rows(int64_t n, int threads, int64_t chunk, int64_t min_rows = 1);

// Throws std::invalid_argument when any value is NaN or infinite (names the row and column).
void check_finite(const double* X, int64_t n, int64_t F);

}  // namespace esm::predict
