// esm._cuda bindings of the device models: linear, trees and the LUT over genomes.
// Device pointers come in as integers (cupy's data.ptr) with a stream handle; the *_host
// variants take NumPy arrays and do the copies, chunk by chunk (device memory bounded by chunk).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/cuda_predict.hpp"
#include "esm/predict.hpp"

namespace py = pybind11;
namespace ec = esm::cuda;
namespace ep = esm::predict;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
std::vector<T> vec(const Arr<T>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

ep::Common common(const Arr<double>& mean, const Arr<double>& scale, const std::string& target) {
  ep::Common c;
  c.n_features = mean.size();
  c.x_mean = vec(mean);
  c.x_scale = vec(scale);
  c.target = ep::parse_target(target);
  ep::check_common(c);
  return c;
}

struct Buffer {
  explicit Buffer(size_t bytes) : p(ec::device_alloc(bytes)) {}
  ~Buffer() { ec::device_free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* p;
};

// Predictions of host rows [N, width] (features or genomes) by a device model, copied to the
// device and back chunk by chunk (device memory bounded by chunk rows).
template <class T, class Model>
py::array_t<double> predict_host(const Model& m, const Arr<T>& rows_in, int64_t width,
                                 const char* what, int64_t chunk) {
  if (rows_in.ndim() != 2 || rows_in.shape(1) != width) {
    throw std::invalid_argument(std::string(what) + " must have shape [N, " +
                                std::to_string(width) + "]");
  }
  if (chunk <= 0) throw std::invalid_argument("chunk must be positive");
  const int64_t n = rows_in.shape(0);
  py::array_t<double> out(n);
  if (n == 0) return out;
  py::gil_scoped_release release;
  const int64_t rows = std::min(chunk, n);
  Buffer dx(sizeof(T) * rows * width), dy(sizeof(double) * rows);
  for (int64_t b = 0; b < n; b += rows) {
    const int64_t k = std::min(rows, n - b);
    ec::copy_to_device(dx.p, rows_in.data() + b * width, sizeof(T) * k * width, 0);
    m.predict(static_cast<T*>(dx.p), k, static_cast<double*>(dy.p), 0);
    ec::copy_to_host(out.mutable_data() + b, dy.p, sizeof(double) * k, 0);
  }
  return out;
}

// Queues predictions of n rows of T at device address `rows` into `out` on `stream`.
template <class T, class Model>
void predict_device(const Model& m, uintptr_t rows, int64_t n, uintptr_t out, uintptr_t stream) {
  py::gil_scoped_release release;
  m.predict(reinterpret_cast<const T*>(rows), n, reinterpret_cast<double*>(out), stream);
}

py::array_t<double> model_host(const ec::DeviceModel& m, const Arr<double>& X, int64_t chunk) {
  return predict_host(m, X, m.n_features(), "features", chunk);
}

py::array_t<double> lut_host(const ec::DeviceLut& m, const Arr<int32_t>& G, int64_t chunk) {
  return predict_host(m, G, m.n_genes(), "genomes", chunk);
}

}  // namespace

void register_predict(py::module_& m) {
  py::class_<ec::DeviceModel, std::shared_ptr<ec::DeviceModel>>(m, "DeviceModel")
      .def_property_readonly("n_features", &ec::DeviceModel::n_features)
      .def("predict_device", &predict_device<double, ec::DeviceModel>, py::arg("X_ptr"),
           py::arg("n"), py::arg("out_ptr"), py::arg("stream") = 0,
           "Queue predictions of n float64 feature rows at device address X_ptr into out_ptr.")
      .def("predict_host", &model_host, py::arg("X"), py::arg("chunk") = 1 << 20,
           "Predictions of NumPy feature rows (copied to the device chunk by chunk).");

  m.def(
      "linear_model",
      [](const Arr<double>& mean, const Arr<double>& scale, const std::string& target,
         const Arr<double>& coef, double intercept) -> std::shared_ptr<ec::DeviceModel> {
        ep::Common c = common(mean, scale, target);
        if (coef.size() != c.n_features) throw std::invalid_argument("coef must have F values");
        return ec::device_linear(c, vec(coef), intercept);
      },
      py::arg("x_mean"), py::arg("x_scale"), py::arg("target"), py::arg("coef"),
      py::arg("intercept"));

  m.def(
      "trees_model",
      [](const Arr<double>& mean, const Arr<double>& scale, const std::string& target,
         const Arr<int32_t>& feature, const Arr<double>& threshold, const Arr<int32_t>& left,
         const Arr<int32_t>& right, const Arr<double>& value, const Arr<int32_t>& roots,
         double base, const std::string& rule,
         const std::string& input_dtype) -> std::shared_ptr<ec::DeviceModel> {
        ep::Common c = common(mean, scale, target);
        ep::TreesParams p;
        p.feature = vec(feature);
        p.threshold = vec(threshold);
        p.left = vec(left);
        p.right = vec(right);
        p.value = vec(value);
        p.roots = vec(roots);
        p.base = base;
        p.rule_lt = ep::parse_rule_lt(rule);
        p.float32_inputs = ep::parse_float32_inputs(input_dtype);
        ep::CompactTrees t = ep::compact_trees(p, c.n_features);
        return ec::device_trees(c, t);
      },
      py::arg("x_mean"), py::arg("x_scale"), py::arg("target"), py::arg("feature"),
      py::arg("threshold"), py::arg("left"), py::arg("right"), py::arg("value"), py::arg("roots"),
      py::arg("base"), py::arg("rule"), py::arg("input_dtype"));

  py::class_<ec::DeviceLut, std::shared_ptr<ec::DeviceLut>>(m, "DeviceLut")
      .def(py::init([](const Arr<double>& table, const Arr<int64_t>& offset,
                       const Arr<int32_t>& gene_slot, const Arr<int32_t>& slot_gene,
                       const Arr<uint8_t>& slot_active, int32_t max_choice, double bias,
                       bool log_target) {
             return std::make_shared<ec::DeviceLut>(vec(table), vec(offset), vec(gene_slot),
                                                    vec(slot_gene), vec(slot_active), max_choice,
                                                    bias, log_target);
           }),
           py::arg("table"), py::arg("offset"), py::arg("gene_slot"), py::arg("slot_gene"),
           py::arg("slot_active"), py::arg("max_choice"), py::arg("bias"), py::arg("log_target"))
      .def_property_readonly("n_genes", &ec::DeviceLut::n_genes)
      .def("predict_device", &predict_device<int32_t, ec::DeviceLut>, py::arg("genomes_ptr"),
           py::arg("n"), py::arg("out_ptr"), py::arg("stream") = 0,
           "Queue predictions of n validated int32 genomes at device address genomes_ptr.")
      .def("predict_host", &lut_host, py::arg("genomes"), py::arg("chunk") = 1 << 20,
           "Predictions of validated NumPy int32 genomes (copied chunk by chunk).");
  m.def(
      "synchronize",
      [](uintptr_t stream) {
        py::gil_scoped_release release;
        ec::synchronize(stream);
      },
      py::arg("stream") = 0);
}
