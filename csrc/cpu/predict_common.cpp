// Shared parts of the compiled models: standardisation, target map, chunked threading.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/parallel.hpp"
#include "esm/predict.hpp"

namespace esm::predict {

void check_common(const Common& c) {
  const int64_t F = c.n_features;
  if (F <= 0) throw std::invalid_argument("model: the number of features must be positive");
  if (static_cast<int64_t>(c.x_mean.size()) != F || static_cast<int64_t>(c.x_scale.size()) != F) {
    throw std::invalid_argument("model: x_mean and x_scale must have " + std::to_string(F) +
                                " values (one per feature)");
  }
  for (int64_t j = 0; j < F; ++j) {
    // An infinite scale switches a column off (x' = 0), as the surrogate's column subsets do.
    if (!std::isfinite(c.x_mean[j]) || std::isnan(c.x_scale[j]) || c.x_scale[j] == 0.0) {
      throw std::invalid_argument("model: x_mean/x_scale of feature " + std::to_string(j) +
                                  " must be finite with a non-zero (or infinite) scale");
    }
  }
}

Target parse_target(const std::string& name) {
  if (name == "log") return Target::kLog;
  if (name == "identity") return Target::kIdentity;
  throw std::invalid_argument("model: unknown target transform '" + name +
                              "' (known: log, identity)");
}

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  if (name == "logistic") return Activation::kLogistic;
  if (name == "identity") return Activation::kIdentity;
  throw std::invalid_argument("mlp: unknown activation '" + name + "'");
}

bool parse_rule_lt(const std::string& rule) {
  if (rule != "le" && rule != "lt") {
    throw std::invalid_argument("trees: rule must be 'le' or 'lt', got '" + rule + "'");
  }
  return rule == "lt";
}

bool parse_float32_inputs(const std::string& input_dtype) {
  if (input_dtype != "float32" && input_dtype != "float64") {
    throw std::invalid_argument("trees: input_dtype must be 'float32' or 'float64', got '" +
                                input_dtype + "'");
  }
  return input_dtype == "float32";
}

HotLayout parse_hot_layout(const std::string& name) {
  if (name == "auto") return HotLayout::kAuto;
  if (name == "walk") return HotLayout::kWalk;
  if (name == "slice") return HotLayout::kSlice;
  throw std::invalid_argument("trees: hot_layout must be 'auto', 'walk' or 'slice', got '" + name +
                              "'");
}

Model::Model(Common common) : common_(std::move(common)) {
  check_common(common_);
}

bool Model::affine(std::vector<double>*) const {
  return false;
}

void Model::predict_rows(const double* X, int64_t n, double* x, double* out) const {
  const int64_t F = common_.n_features;
  const double* mean = common_.x_mean.data();
  const double* scale = common_.x_scale.data();
  for (int64_t i = 0; i < n; ++i) {
    const double* src = X + i * F;
    double* dst = x + i * F;
    for (int64_t j = 0; j < F; ++j) dst[j] = (src[j] - mean[j]) / scale[j];
  }
  eval(x, n, out);
  finish(out, n);
}

void Model::finish(double* out, int64_t n) const {
  if (common_.target == Target::kLog) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::exp(out[i]);
  }
}

void Model::predict_hot(const int32_t*, int64_t, int64_t, double*) const {
  throw std::logic_error(std::string(kind()) + ": no one-hot path");
}

int64_t piece_rows(int64_t n, int threads, int64_t chunk, int64_t min_rows) {
  if (chunk <= 0) throw std::invalid_argument("chunk must be a positive number of rows");
  const int64_t t = resolve_threads(threads);
  const int64_t per = std::max((n + t - 1) / std::max<int64_t>(1, t), min_rows);
  return std::max<int64_t>(1, std::min(chunk, per));
}

void Model::predict(const double* X, int64_t n, double* out, int threads, int64_t chunk) const {
  if (n <= 0) return;
  const int64_t F = common_.n_features;
  const int64_t piece = piece_rows(n, threads, chunk, min_piece());
  const int64_t pieces = (n + piece - 1) / piece;
  // Sub-blocks of kSub rows keep the scratch small and in cache whatever the chunk size.
  constexpr int64_t kSub = 512;
  parallel_for(pieces, threads, 1, [&](int64_t b, int64_t e) {
    const int64_t rows = std::min({piece, n, kSub});
    std::vector<double> scratch(static_cast<size_t>(rows * F));
    for (int64_t p = b; p < e; ++p) {
      const int64_t r0 = p * piece, m = std::min(piece, n - r0);
      for (int64_t s0 = 0; s0 < m; s0 += rows) {
        predict_rows(X + (r0 + s0) * F, std::min(rows, m - s0), scratch.data(), out + r0 + s0);
      }
    }
  });
}

void check_finite(const double* X, int64_t n, int64_t F) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < F; ++j) {
      if (!std::isfinite(X[i * F + j])) {
        throw std::invalid_argument("features: row " + std::to_string(i) + ", column " +
                                    std::to_string(j) + " is not finite");
      }
    }
  }
}

}  // namespace esm::predict
