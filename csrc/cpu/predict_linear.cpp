// Linear family (ridge, LUT over one-hot features): y = intercept + coef . x'.
#include <cmath>
#include <stdexcept>
#include <string>

#include "esm/predict.hpp"

namespace esm::predict {
namespace {

class Linear final : public Model {
 public:
  Linear(Common c, LinearParams p) : Model(std::move(c)), p_(std::move(p)) {
    if (static_cast<int64_t>(p_.coef.size()) != n_features()) {
      throw std::invalid_argument("linear: coef must have " + std::to_string(n_features()) +
                                  " values, got " + std::to_string(p_.coef.size()));
    }
    for (double v : p_.coef) {
      if (!std::isfinite(v)) throw std::invalid_argument("linear: coef must be finite");
    }
    if (!std::isfinite(p_.intercept))
      throw std::invalid_argument("linear: intercept must be finite");
  }
  const char* kind() const override { return "linear"; }

  bool affine(std::vector<double>* w) const override {
    const int64_t F = n_features();
    w->assign(static_cast<size_t>(F + 1), 0.0);
    double bias = p_.intercept;
    for (int64_t j = 0; j < F; ++j) {
      (*w)[j] = p_.coef[j] / common_.x_scale[j];
      bias -= p_.coef[j] * common_.x_mean[j] / common_.x_scale[j];
    }
    (*w)[F] = bias;
    return true;
  }

 protected:
  void eval(double* xs, int64_t n, double* y) const override {
    const int64_t F = n_features();
    const double* c = p_.coef.data();
    for (int64_t i = 0; i < n; ++i) {
      const double* x = xs + i * F;
      double s = 0.0;
      for (int64_t j = 0; j < F; ++j) s += c[j] * x[j];
      y[i] = p_.intercept + s;
    }
  }

 private:
  LinearParams p_;
};

}  // namespace

std::unique_ptr<Model> make_linear(Common common, LinearParams p) {
  return std::make_unique<Linear>(std::move(common), std::move(p));
}

}  // namespace esm::predict
