// Bindings for the compiled surrogate models and the fused genomes -> latency pipeline.
// Python objects become C++ arrays here (dtype kind, shape, int32 range); the C++ core checks
// the rest (meta names, tree links, layer shapes, plan against space). GIL released around work.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "esm/costs.hpp"
#include "esm/encode.hpp"
#include "esm/fold.hpp"
#include "esm/predict.hpp"
#include "genome_rows.hpp"
#include "plan_dict.hpp"

namespace py = pybind11;
namespace ep = esm::predict;

namespace {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

char dtype_kind(const py::array& a) {
  return a.dtype().kind();
}

py::array get(const py::dict& arrays, const char* name, const std::string& kind) {
  if (!arrays.contains(name)) {
    throw std::invalid_argument(kind + ": the model has no array '" + name + "'");
  }
  py::object o = arrays[name];
  if (!py::isinstance<py::array>(o)) {
    throw std::invalid_argument(kind + ": '" + name + "' must be a NumPy array");
  }
  return o.cast<py::array>();
}

std::vector<double> floats(const py::dict& arrays, const char* name, const std::string& kind,
                           int64_t expect = -1) {
  py::array a = get(arrays, name, kind);
  const char k = dtype_kind(a);
  if (k != 'f' && k != 'i' && k != 'u') {
    throw std::invalid_argument(kind + ": '" + name + "' must be numeric, got dtype " +
                                py::str(a.dtype()).cast<std::string>());
  }
  F64 f = F64::ensure(a);
  if (!f) throw std::invalid_argument(kind + ": cannot read '" + name + "' as float64");
  if (expect >= 0 && f.size() != expect) {
    throw std::invalid_argument(kind + ": '" + name + "' must have " + std::to_string(expect) +
                                " values, got " + std::to_string(f.size()));
  }
  return std::vector<double>(f.data(), f.data() + f.size());
}

std::vector<int32_t> ints(const py::dict& arrays, const char* name, const std::string& kind) {
  py::array a = get(arrays, name, kind);
  const char k = dtype_kind(a);
  if (k != 'i' && k != 'u') {
    throw std::invalid_argument(kind + ": '" + name + "' must hold integers, got dtype " +
                                py::str(a.dtype()).cast<std::string>());
  }
  auto f = py::array_t < int64_t, py::array::c_style | py::array::forcecast > ::ensure(a);
  if (!f) throw std::invalid_argument(kind + ": cannot read '" + name + "' as integers");
  std::vector<int32_t> out(static_cast<size_t>(f.size()));
  for (py::ssize_t i = 0; i < f.size(); ++i) {
    const int64_t v = f.data()[i];
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      throw std::invalid_argument(kind + ": '" + name + "' value " + std::to_string(v) +
                                  " is out of the int32 range");
    }
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

double scalar(const py::dict& arrays, const char* name, const std::string& kind) {
  std::vector<double> v = floats(arrays, name, kind, 1);
  return v[0];
}

template <class T>
T meta_get(const py::dict& meta, const char* name, const T& fallback) {
  if (!meta.contains(name)) return fallback;
  try {
    return meta[name].cast<T>();
  } catch (const py::cast_error&) {
    throw std::invalid_argument(std::string("model meta '") + name + "' has the wrong type");
  }
}

std::shared_ptr<ep::Model> make_model(const std::string& kind, int64_t n_features,
                                      const py::dict& arrays, const py::dict& meta,
                                      const std::string& target) {
  if (n_features <= 0) throw std::invalid_argument("model: n_features must be positive");
  ep::Common c;
  c.n_features = n_features;
  c.x_mean = floats(arrays, "x_mean", kind, n_features);
  c.x_scale = floats(arrays, "x_scale", kind, n_features);
  c.target = ep::parse_target(target);
  if (kind == "linear") {
    ep::LinearParams p;
    p.coef = floats(arrays, "coef", kind, n_features);
    p.intercept = scalar(arrays, "intercept", kind);
    return ep::make_linear(std::move(c), std::move(p));
  }
  if (kind == "trees") {
    ep::TreesParams p;
    p.feature = ints(arrays, "feature", kind);
    p.left = ints(arrays, "left", kind);
    p.right = ints(arrays, "right", kind);
    p.roots = ints(arrays, "roots", kind);
    p.threshold = floats(arrays, "threshold", kind);
    p.value = floats(arrays, "value", kind);
    p.base = scalar(arrays, "base", kind);
    p.rule_lt = ep::parse_rule_lt(meta_get<std::string>(meta, "rule", "le"));
    p.float32_inputs =
        ep::parse_float32_inputs(meta_get<std::string>(meta, "input_dtype", "float64"));
    p.hot_layout = ep::parse_hot_layout(meta_get<std::string>(meta, "hot_layout", "auto"));
    py::gil_scoped_release release;
    return ep::make_trees(std::move(c), std::move(p));
  }
  if (kind == "mlp") {
    ep::MlpParams p;
    p.activation = ep::parse_activation(meta_get<std::string>(meta, "activation", "relu"));
    p.sizes.push_back(n_features);
    for (int l = 0;; ++l) {
      const std::string wn = "W" + std::to_string(l), bn = "b" + std::to_string(l);
      if (!arrays.contains(wn.c_str())) break;
      py::array W = get(arrays, wn.c_str(), kind);
      if (W.ndim() != 2) throw std::invalid_argument("mlp: " + wn + " must be 2-D [in, out]");
      if (W.shape(0) != p.sizes.back()) {
        throw std::invalid_argument("mlp: " + wn + " has " + std::to_string(W.shape(0)) +
                                    " rows, expected " + std::to_string(p.sizes.back()));
      }
      p.sizes.push_back(W.shape(1));
      p.weights.push_back(floats(arrays, wn.c_str(), kind));
      p.biases.push_back(floats(arrays, bn.c_str(), kind, W.shape(1)));
    }
    return ep::make_mlp(std::move(c), std::move(p));
  }
  if (kind == "gcn") {
    ep::GcnParams p;
    py::array A = get(arrays, "adjacency", kind), I = get(arrays, "node_index", kind);
    if (A.ndim() != 2 || A.shape(0) != A.shape(1) || I.ndim() != 2 || I.shape(0) != A.shape(0)) {
      throw std::invalid_argument("gcn: adjacency must be [V, V] and node_index [V, C]");
    }
    p.V = A.shape(0);
    p.C = I.shape(1);
    p.adjacency = floats(arrays, "adjacency", kind);
    p.node_index = ints(arrays, "node_index", kind);
    if (arrays.contains("node_const")) {
      py::array K = get(arrays, "node_const", kind);
      if (K.ndim() != 2 || K.shape(0) != p.V) {
        throw std::invalid_argument("gcn: node_const must be [V, T]");
      }
      p.T = K.shape(1);
      p.node_const = floats(arrays, "node_const", kind);
    }
    p.sizes.push_back(p.C + p.T);
    for (int l = 0;; ++l) {
      const std::string wn = "W" + std::to_string(l), bn = "b" + std::to_string(l);
      if (!arrays.contains(wn.c_str())) break;
      py::array W = get(arrays, wn.c_str(), kind);
      if (W.ndim() != 2 || W.shape(0) != p.sizes.back()) {
        throw std::invalid_argument("gcn: " + wn + " must be [" + std::to_string(p.sizes.back()) +
                                    ", out]");
      }
      p.sizes.push_back(W.shape(1));
      p.weights.push_back(floats(arrays, wn.c_str(), kind));
      p.biases.push_back(floats(arrays, bn.c_str(), kind, W.shape(1)));
    }
    p.w_out = floats(arrays, "Wout", kind, p.sizes.back());
    p.b_out = scalar(arrays, "bout", kind);
    return ep::make_gcn(std::move(c), std::move(p));
  }
  if (kind == "knn" || kind == "gp") {
    py::array X = get(arrays, "X", kind);
    if (X.ndim() != 2 || X.shape(1) != n_features) {
      throw std::invalid_argument(kind + ": X must be [n, " + std::to_string(n_features) + "]");
    }
    const int64_t n = X.shape(0);
    if (kind == "knn") {
      ep::KnnParams p;
      p.n = n;
      p.X = floats(arrays, "X", kind);
      p.y = floats(arrays, "y", kind, n);
      p.k = meta_get<int64_t>(meta, "k", 5);
      const std::string w = meta_get<std::string>(meta, "weights", "uniform");
      if (w != "uniform" && w != "distance") {
        throw std::invalid_argument("knn: weights must be 'uniform' or 'distance'");
      }
      p.distance_weights = w == "distance";
      return ep::make_knn(std::move(c), std::move(p));
    }
    ep::GpParams p;
    p.n = n;
    p.X = floats(arrays, "X", kind);
    p.alpha = floats(arrays, "alpha", kind, n);
    p.length_scale = floats(arrays, "length_scale", kind, n_features);
    p.constant = meta_get<double>(meta, "constant", 1.0);
    p.y_mean = meta_get<double>(meta, "y_mean", 0.0);
    p.y_std = meta_get<double>(meta, "y_std", 1.0);
    return ep::make_gp(std::move(c), std::move(p));
  }
  throw std::invalid_argument("unknown model kind '" + kind +
                              "' (known: linear, trees, mlp, knn, gp, gcn)");
}

// Feature rows as C-contiguous float64 [n, F]: other real/integer dtypes and strided arrays are
// converted (a copy), anything else is refused.
F64 feature_rows(const py::object& obj, int64_t F) {
  if (!py::isinstance<py::array>(obj)) {
    throw std::invalid_argument("features must be a NumPy array [N, F]");
  }
  py::array a = obj.cast<py::array>();
  const char k = dtype_kind(a);
  if (k != 'f' && k != 'i' && k != 'u' && k != 'b') {
    throw std::invalid_argument("features must be numeric, got dtype " +
                                py::str(a.dtype()).cast<std::string>());
  }
  if (a.ndim() != 2 || a.shape(1) != F) {
    std::string shape = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d)
      shape += (d ? ", " : "") + std::to_string(a.shape(d));
    throw std::invalid_argument("features must have shape [N, " + std::to_string(F) + "], got " +
                                shape + ")");
  }
  return F64::ensure(a);
}

py::array_t<double> predict_features(const ep::Model& m, const py::object& X, int threads,
                                     int64_t chunk) {
  F64 x = feature_rows(X, m.n_features());
  const int64_t n = x.shape(0);
  py::array_t<double> out(n);
  if (chunk <= 0) throw std::invalid_argument("chunk must be a positive number of rows");
  {
    py::gil_scoped_release release;
    ep::check_finite(x.data(), n, m.n_features());
    m.predict(x.data(), n, out.mutable_data(), threads, chunk);
  }
  return out;
}

}  // namespace

void register_predict_fused(py::module_& m);
void register_predict_folded(py::module_& m);

void register_predict(py::module_& m) {
  py::class_<ep::Model, std::shared_ptr<ep::Model>>(m, "CompiledModel",
                                                    "A regressor compiled from plain arrays.")
      .def(py::init(&make_model), py::arg("kind"), py::arg("n_features"), py::arg("arrays"),
           py::arg("meta"), py::arg("target") = "identity",
           "Build from the model-file arrays (x_mean, x_scale and the family's arrays).")
      .def_property_readonly("kind", &ep::Model::kind)
      .def_property_readonly("n_features", &ep::Model::n_features)
      .def("predict", &predict_features, py::arg("X"), py::arg("threads") = 0,
           py::arg("chunk") = 65536,
           "Predictions [N] float64 for raw feature rows X [N, F]. Other numeric dtypes and "
           "non-contiguous arrays are converted; N = 0 gives an empty result.");
  register_predict_fused(m);
  register_predict_folded(m);
}

// ------------------------------------------------------------------------- fused pipeline
namespace {

class Fused {
 public:
  Fused(const std::string& space,
        const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& config,
        const py::dict& plan, std::shared_ptr<ep::Model> model)
      : space_(esm::find_space(space)), model_(std::move(model)) {
    esm::check_config(space_, config.ndim(), config.data(), config.size());
    config_.assign(config.data(), config.data() + config.size());
    plan_ = esm_bindings::parse_plan(space_, config_.data(), plan);
    if (model_ && model_->n_features() != plan_.n_features()) {
      throw std::invalid_argument("the encoder makes " + std::to_string(plan_.n_features()) +
                                  " features, the model expects " +
                                  std::to_string(model_->n_features()));
    }
  }

  int64_t n_genes() const { return static_cast<int64_t>(plan_.choices.size()); }
  int64_t n_features() const { return plan_.n_features(); }
  bool needs_costs() const { return plan_.needs_costs(); }

  py::array_t<double> encode(const py::object& genomes_obj, int threads) const {
    auto genomes = esm_bindings::genome_rows(genomes_obj, n_genes());
    const int64_t n = genomes.shape(0);
    py::array_t<double> X({n, n_features()});
    {
      py::gil_scoped_release release;
      ep::encode_genomes(space_, config_.data(), plan_, genomes.data(), n, n_genes(),
                         X.mutable_data(), threads);
    }
    return X;
  }

  py::array_t<double> predict(const py::object& genomes_obj, int threads, int64_t chunk) const {
    if (!model_) throw std::invalid_argument("this pipeline has no model");
    if (chunk <= 0) throw std::invalid_argument("chunk must be a positive number of rows");
    auto genomes = esm_bindings::genome_rows(genomes_obj, n_genes());
    const int64_t n = genomes.shape(0);
    py::array_t<double> out(n);
    {
      py::gil_scoped_release release;
      ep::predict_genomes(space_, config_.data(), plan_, *model_, genomes.data(), n, n_genes(),
                          out.mutable_data(), threads, chunk);
    }
    return out;
  }

 private:
  const esm::SpaceKernel& space_;
  std::vector<int64_t> config_;
  ep::EncodePlan plan_;
  std::shared_ptr<ep::Model> model_;
};

template <class T>
std::vector<T> vec1d(const py::object& obj, const char* name) {
  if (!py::isinstance<py::array>(obj)) {
    throw std::invalid_argument(std::string("fold: '") + name + "' must be a NumPy array");
  }
  py::array a = obj.cast<py::array>();
  const char k = a.dtype().kind();
  const bool want_int = std::is_integral<T>::value;
  if (a.ndim() != 1 || (want_int && k != 'i' && k != 'u') ||
      (!want_int && k != 'f' && k != 'i' && k != 'u')) {
    throw std::invalid_argument(std::string("fold: '") + name + "' must be a 1-d " +
                                (want_int ? "integer" : "numeric") + " array");
  }
  if (want_int) {
    auto w = py::array_t < int64_t, py::array::c_style | py::array::forcecast > ::ensure(a);
    std::vector<T> out(static_cast<size_t>(w.size()));
    for (py::ssize_t i = 0; i < w.size(); ++i) {
      const int64_t v = w.data()[i];
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
        throw std::invalid_argument(std::string("fold: '") + name + "' value out of range");
      }
      out[static_cast<size_t>(i)] = static_cast<T>(v);
    }
    return out;
  }
  auto w = F64::ensure(a);
  std::vector<T> out(w.data(), w.data() + w.size());
  for (T v : out) {
    if (!std::isfinite(static_cast<double>(v))) {
      throw std::invalid_argument(std::string("fold: '") + name + "' holds a non-finite value");
    }
  }
  return out;
}

class Folded {
 public:
  Folded(const py::object& choices, const py::object& key_genes, const py::object& key_strides,
         const py::object& key_ptr, const py::object& table_ptr, const py::object& values,
         double intercept) {
    fold_.choices = vec1d<int32_t>(choices, "choices");
    fold_.key_genes = vec1d<int32_t>(key_genes, "key_genes");
    fold_.key_strides = vec1d<int64_t>(key_strides, "key_strides");
    fold_.key_ptr = vec1d<int64_t>(key_ptr, "key_ptr");
    fold_.table_ptr = vec1d<int64_t>(table_ptr, "table_ptr");
    fold_.values = vec1d<double>(values, "values");
    if (!std::isfinite(intercept)) throw std::invalid_argument("fold: non-finite intercept");
    fold_.intercept = intercept;
    fold_.check();
  }

  int64_t n_genes() const { return fold_.n_genes(); }
  int64_t n_tables() const { return static_cast<int64_t>(fold_.table_ptr.size()) - 1; }

  py::array_t<double> predict(const py::object& genomes_obj, int threads, int64_t chunk) const {
    if (chunk <= 0) throw std::invalid_argument("chunk must be a positive number of rows");
    auto genomes = esm_bindings::genome_rows(genomes_obj, n_genes());
    const int64_t n = genomes.shape(0);
    py::array_t<double> out(n);
    {
      py::gil_scoped_release release;
      ep::predict_folded(fold_, genomes.data(), n, out.mutable_data(), threads, chunk);
    }
    return out;
  }

 private:
  ep::Fold fold_;
};

}  // namespace

void register_predict_folded(py::module_& m) {
  py::class_<Folded>(m, "FoldedPredictor",
                     "A linear model folded into lookup tables over genes (threaded).")
      .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&,
                    const py::object&, const py::object&, double>(),
           py::arg("choices"), py::arg("key_genes"), py::arg("key_strides"), py::arg("key_ptr"),
           py::arg("table_ptr"), py::arg("values"), py::arg("intercept"))
      .def_property_readonly("n_genes", &Folded::n_genes)
      .def_property_readonly("n_tables", &Folded::n_tables)
      .def("predict", &Folded::predict, py::arg("genomes"), py::arg("threads") = 0,
           py::arg("chunk") = 65536,
           "Latencies [N] of genomes [N, G]; genes are range-checked before any lookup.");
}

void register_predict_fused(py::module_& m) {
  py::class_<Fused>(m, "FusedPredictor",
                    "genomes -> costs -> features -> model in C++, chunked and threaded.")
      .def(py::init<const std::string&,
                    const py::array_t<int64_t, py::array::c_style | py::array::forcecast>&,
                    const py::dict&, std::shared_ptr<ep::Model>>(),
           py::arg("space"), py::arg("config"), py::arg("plan"), py::arg("model") = nullptr)
      .def_property_readonly("n_features", &Fused::n_features)
      .def_property_readonly("n_genes", &Fused::n_genes)
      .def_property_readonly("needs_costs", &Fused::needs_costs)
      .def("encode", &Fused::encode, py::arg("genomes"), py::arg("threads") = 0,
           "Features [N, F] of validated genomes (the compiled encoder).")
      .def("predict", &Fused::predict, py::arg("genomes"), py::arg("threads") = 0,
           py::arg("chunk") = 65536,
           "Latencies [N] of genomes [N, G] (int32; other integer "
           "dtypes are converted); N = 0 gives an empty result.");
}
