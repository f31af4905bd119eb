// Dense families: multi-layer perceptron, k-nearest neighbours, Gaussian process (RBF kernel).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/predict.hpp"

namespace esm::predict {
namespace {

void require_finite(const std::vector<double>& v, const char* what) {
  for (double x : v) {
    if (!std::isfinite(x)) throw std::invalid_argument(std::string(what) + " must be finite");
  }
}

// ---------------------------------------------------------------- MLP
class Mlp final : public Model {
 public:
  Mlp(Common c, MlpParams p) : Model(std::move(c)), p_(std::move(p)) {
    const size_t L = p_.weights.size();
    if (L == 0) throw std::invalid_argument("mlp: no layers");
    if (p_.biases.size() != L || p_.sizes.size() != L + 1) {
      throw std::invalid_argument("mlp: need as many biases as weight matrices");
    }
    if (p_.sizes[0] != n_features()) {
      throw std::invalid_argument("mlp: the first weight matrix has " +
                                  std::to_string(p_.sizes[0]) + " rows, the model has " +
                                  std::to_string(n_features()) + " features");
    }
    if (p_.sizes[L] != 1) throw std::invalid_argument("mlp: the last layer must have one output");
    for (size_t l = 0; l < L; ++l) {
      if (p_.sizes[l + 1] <= 0 ||
          static_cast<int64_t>(p_.weights[l].size()) != p_.sizes[l] * p_.sizes[l + 1] ||
          static_cast<int64_t>(p_.biases[l].size()) != p_.sizes[l + 1]) {
        throw std::invalid_argument("mlp: layer " + std::to_string(l) +
                                    " has inconsistent weight/bias shapes");
      }
      require_finite(p_.weights[l], "mlp: weights");
      require_finite(p_.biases[l], "mlp: biases");
    }
    widest_ = *std::max_element(p_.sizes.begin(), p_.sizes.end());
  }
  const char* kind() const override { return "mlp"; }

 protected:
  void eval(double* xs, int64_t n, double* y) const override {
    constexpr int64_t kRows = 32;
    std::vector<double> a(static_cast<size_t>(kRows * widest_)), b(a.size());
    const size_t L = p_.weights.size();
    for (int64_t r0 = 0; r0 < n; r0 += kRows) {
      const int64_t m = std::min(kRows, n - r0);
      const double* in = xs + r0 * n_features();
      for (size_t l = 0; l < L; ++l) {
        const int64_t ni = p_.sizes[l], no = p_.sizes[l + 1];
        const double* W = p_.weights[l].data();
        const double* bias = p_.biases[l].data();
        double* out = b.data();
        // Four rows at a time share every load of a weight row (register blocking).
        int64_t r = 0;
        for (; r + 4 <= m; r += 4) {
          double* o0 = out + r * no;
          double* o1 = o0 + no;
          double* o2 = o1 + no;
          double* o3 = o2 + no;
          const double* x0 = in + r * ni;
          const double* x1 = x0 + ni;
          const double* x2 = x1 + ni;
          const double* x3 = x2 + ni;
          for (int64_t j = 0; j < no; ++j) o0[j] = o1[j] = o2[j] = o3[j] = 0.0;
          for (int64_t i = 0; i < ni; ++i) {
            const double v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
            const double* w = W + i * no;
            for (int64_t j = 0; j < no; ++j) {
              const double wj = w[j];
              o0[j] += v0 * wj;
              o1[j] += v1 * wj;
              o2[j] += v2 * wj;
              o3[j] += v3 * wj;
            }
          }
          for (double* o : {o0, o1, o2, o3}) {
            for (int64_t j = 0; j < no; ++j) o[j] += bias[j];
            if (l + 1 < L) activate(o, no);
          }
        }
        for (; r < m; ++r) {
          double* o = out + r * no;
          const double* x = in + r * ni;
          for (int64_t j = 0; j < no; ++j) o[j] = 0.0;
          for (int64_t i = 0; i < ni; ++i) {
            const double v = x[i];
            const double* w = W + i * no;
            for (int64_t j = 0; j < no; ++j) o[j] += v * w[j];
          }
          for (int64_t j = 0; j < no; ++j) o[j] += bias[j];
          if (l + 1 < L) activate(o, no);
        }
        std::swap(a, b);
        in = a.data();
      }
      for (int64_t r = 0; r < m; ++r) y[r0 + r] = a[r];  // last layer has width 1
    }
  }

 private:
  void activate(double* o, int64_t no) const {
    switch (p_.activation) {
      case Activation::kRelu:
        for (int64_t j = 0; j < no; ++j) o[j] = o[j] > 0.0 ? o[j] : 0.0;
        break;
      case Activation::kTanh:
        for (int64_t j = 0; j < no; ++j) o[j] = std::tanh(o[j]);
        break;
      case Activation::kLogistic:
        for (int64_t j = 0; j < no; ++j) o[j] = 1.0 / (1.0 + std::exp(-o[j]));
        break;
      case Activation::kIdentity: break;
    }
  }

  MlpParams p_;
  int64_t widest_ = 0;
};

// ---------------------------------------------------------------- kNN
class Knn final : public Model {
 public:
  Knn(Common c, KnnParams p) : Model(std::move(c)), p_(std::move(p)) {
    if (p_.n <= 0) throw std::invalid_argument("knn: no training rows");
    if (static_cast<int64_t>(p_.X.size()) != p_.n * n_features() ||
        static_cast<int64_t>(p_.y.size()) != p_.n) {
      throw std::invalid_argument("knn: X must be [n, F] and y [n]");
    }
    if (p_.k <= 0 || p_.k > p_.n) {
      throw std::invalid_argument("knn: k must be in [1, n] = [1, " + std::to_string(p_.n) + "]");
    }
    require_finite(p_.X, "knn: X");
    require_finite(p_.y, "knn: y");
  }
  const char* kind() const override { return "knn"; }

 protected:
  // Exact squared Euclidean distances; ties keep the lower training index.
  void eval(double* xs, int64_t n, double* y) const override {
    const int64_t F = n_features(), N = p_.n, K = p_.k;
    std::vector<double> best_d(static_cast<size_t>(K));
    std::vector<int64_t> best_i(static_cast<size_t>(K));
    for (int64_t q = 0; q < n; ++q) {
      const double* x = xs + q * F;
      int64_t filled = 0;
      for (int64_t i = 0; i < N; ++i) {
        const double* t = p_.X.data() + i * F;
        double d = 0.0;
        for (int64_t f = 0; f < F; ++f) {
          const double u = x[f] - t[f];
          d += u * u;
        }
        if (filled == K && !(d < best_d[K - 1])) continue;
        int64_t pos = filled < K ? filled++ : K - 1;
        while (pos > 0 && best_d[pos - 1] > d) {
          best_d[pos] = best_d[pos - 1];
          best_i[pos] = best_i[pos - 1];
          --pos;
        }
        best_d[pos] = d;
        best_i[pos] = i;
      }
      if (!p_.distance_weights) {
        double s = 0.0;
        for (int64_t j = 0; j < K; ++j) s += p_.y[best_i[j]];
        y[q] = s / static_cast<double>(K);
      } else {
        // scikit-learn: weights 1/d; when a neighbour is at distance 0, only those count.
        bool exact = false;
        for (int64_t j = 0; j < K; ++j) exact = exact || best_d[j] == 0.0;
        double s = 0.0, w = 0.0;
        for (int64_t j = 0; j < K; ++j) {
          const double wj = exact ? (best_d[j] == 0.0 ? 1.0 : 0.0) : 1.0 / std::sqrt(best_d[j]);
          s += wj * p_.y[best_i[j]];
          w += wj;
        }
        y[q] = s / w;
      }
    }
  }

 private:
  KnnParams p_;
};

// ---------------------------------------------------------------- GP
class Gp final : public Model {
 public:
  Gp(Common c, GpParams p) : Model(std::move(c)), p_(std::move(p)) {
    const int64_t F = n_features();
    if (p_.n <= 0) throw std::invalid_argument("gp: no training rows");
    if (static_cast<int64_t>(p_.X.size()) != p_.n * F ||
        static_cast<int64_t>(p_.alpha.size()) != p_.n ||
        static_cast<int64_t>(p_.length_scale.size()) != F) {
      throw std::invalid_argument("gp: X must be [n, F], alpha [n] and length_scale [F]");
    }
    require_finite(p_.X, "gp: X");
    require_finite(p_.alpha, "gp: alpha");
    for (double l : p_.length_scale) {
      if (!(l > 0.0) || !std::isfinite(l))
        throw std::invalid_argument("gp: length_scale must be positive");
    }
    if (!std::isfinite(p_.constant) || !std::isfinite(p_.y_mean) || !std::isfinite(p_.y_std)) {
      throw std::invalid_argument("gp: constant, y_mean and y_std must be finite");
    }
    // scikit-learn divides both sides by the length scale before the squared distance.
    scaled_.resize(p_.X.size());
    for (int64_t i = 0; i < p_.n; ++i) {
      for (int64_t f = 0; f < F; ++f) scaled_[i * F + f] = p_.X[i * F + f] / p_.length_scale[f];
    }
  }
  const char* kind() const override { return "gp"; }

 protected:
  void eval(double* xs, int64_t n, double* y) const override {
    const int64_t F = n_features(), N = p_.n;
    std::vector<double> q(static_cast<size_t>(F));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t f = 0; f < F; ++f) q[f] = xs[r * F + f] / p_.length_scale[f];
      double s = 0.0;
      for (int64_t i = 0; i < N; ++i) {
        const double* t = scaled_.data() + i * F;
        double d = 0.0;
        for (int64_t f = 0; f < F; ++f) {
          const double u = q[f] - t[f];
          d += u * u;
        }
        s += p_.constant * std::exp(-0.5 * d) * p_.alpha[i];
      }
      y[r] = p_.y_mean + p_.y_std * s;
    }
  }

 private:
  GpParams p_;
  std::vector<double> scaled_;
};

// ---------------------------------------------------------------- GCN
class Gcn final : public Model {
 public:
  Gcn(Common c, GcnParams p) : Model(std::move(c)), p_(std::move(p)) {
    const int64_t V = p_.V, C = p_.C, L = static_cast<int64_t>(p_.weights.size());
    if (V <= 0 || C <= 0) throw std::invalid_argument("gcn: empty graph");
    if (static_cast<int64_t>(p_.adjacency.size()) != V * V ||
        static_cast<int64_t>(p_.node_index.size()) != V * C) {
      throw std::invalid_argument("gcn: adjacency must be [V, V] and node_index [V, C]");
    }
    for (int32_t i : p_.node_index) {
      if (i < -1 || i >= n_features()) throw std::invalid_argument("gcn: node_index out of range");
    }
    if (p_.T < 0 || static_cast<int64_t>(p_.node_const.size()) != V * p_.T) {
      throw std::invalid_argument("gcn: node_const must be [V, T]");
    }
    require_finite(p_.node_const, "gcn: node_const");
    if (L == 0 || static_cast<int64_t>(p_.biases.size()) != L ||
        static_cast<int64_t>(p_.sizes.size()) != L + 1 || p_.sizes[0] != C + p_.T) {
      throw std::invalid_argument("gcn: layer shapes are inconsistent");
    }
    for (int64_t l = 0; l < L; ++l) {
      if (static_cast<int64_t>(p_.weights[l].size()) != p_.sizes[l] * p_.sizes[l + 1] ||
          static_cast<int64_t>(p_.biases[l].size()) != p_.sizes[l + 1]) {
        throw std::invalid_argument("gcn: layer " + std::to_string(l) + " has inconsistent shapes");
      }
      require_finite(p_.weights[l], "gcn: weights");
      require_finite(p_.biases[l], "gcn: biases");
    }
    if (static_cast<int64_t>(p_.w_out.size()) != p_.sizes[L]) {
      throw std::invalid_argument("gcn: Wout must have one row per hidden unit");
    }
    require_finite(p_.adjacency, "gcn: adjacency");
    require_finite(p_.w_out, "gcn: Wout");
    widest_ = *std::max_element(p_.sizes.begin(), p_.sizes.end());
  }
  const char* kind() const override { return "gcn"; }

 protected:
  void eval(double* xs, int64_t n, double* y) const override {
    const int64_t V = p_.V, C = p_.C, T0 = p_.T, F = n_features();
    const int64_t L = static_cast<int64_t>(p_.weights.size());
    std::vector<double> H(static_cast<size_t>(V * widest_)), T(H.size()), O(H.size());
    for (int64_t r = 0; r < n; ++r) {
      const double* x = xs + r * F;
      for (int64_t v = 0; v < V; ++v) {
        for (int64_t c = 0; c < C; ++c) {
          const int32_t i = p_.node_index[v * C + c];
          H[v * (C + T0) + c] = i >= 0 ? x[i] : 0.0;
        }
        for (int64_t c = 0; c < T0; ++c) H[v * (C + T0) + C + c] = p_.node_const[v * T0 + c];
      }
      for (int64_t l = 0; l < L; ++l) {
        const int64_t ni = p_.sizes[l], no = p_.sizes[l + 1];
        for (int64_t u = 0; u < V; ++u) {  // T = A H
          for (int64_t c = 0; c < ni; ++c) {
            double s = 0.0;
            for (int64_t v = 0; v < V; ++v) s += p_.adjacency[u * V + v] * H[v * ni + c];
            T[u * ni + c] = s;
          }
        }
        const double* W = p_.weights[l].data();
        for (int64_t u = 0; u < V; ++u) {  // O = relu(T W + b)
          double* o = O.data() + u * no;
          for (int64_t j = 0; j < no; ++j) o[j] = 0.0;
          for (int64_t c = 0; c < ni; ++c) {
            const double t = T[u * ni + c];
            for (int64_t j = 0; j < no; ++j) o[j] += t * W[c * no + j];
          }
          for (int64_t j = 0; j < no; ++j) {
            const double z = o[j] + p_.biases[l][j];
            o[j] = z > 0.0 ? z : 0.0;
          }
        }
        std::swap(H, O);
      }
      const int64_t h = p_.sizes[L];
      double s = 0.0;
      for (int64_t j = 0; j < h; ++j) {
        double m = 0.0;
        for (int64_t v = 0; v < V; ++v) m += H[v * h + j];
        s += (m / static_cast<double>(V)) * p_.w_out[j];
      }
      y[r] = s + p_.b_out;
    }
  }

 private:
  GcnParams p_;
  int64_t widest_ = 0;
};

}  // namespace

std::unique_ptr<Model> make_gcn(Common common, GcnParams p) {
  return std::make_unique<Gcn>(std::move(common), std::move(p));
}

std::unique_ptr<Model> make_mlp(Common common, MlpParams p) {
  return std::make_unique<Mlp>(std::move(common), std::move(p));
}
std::unique_ptr<Model> make_knn(Common common, KnnParams p) {
  return std::make_unique<Knn>(std::move(common), std::move(p));
}
std::unique_ptr<Model> make_gp(Common common, GpParams p) {
  return std::make_unique<Gp>(std::move(common), std::move(p));
}

}  // namespace esm::predict
