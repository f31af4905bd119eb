// esm._cuda bindings of the device variation operators (esm/cuda_variation.hpp): device
// pointers as integers (cupy's data.ptr), shapes checked by the caller (esm.search.device).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "esm/cuda_variation.hpp"

namespace py = pybind11;
namespace ec = esm::cuda;

namespace {

void need_ptrs(int64_t n, std::initializer_list<uintptr_t> ptrs) {
  if (n < 0) throw std::invalid_argument("n must be >= 0");
  for (uintptr_t p : ptrs) {
    if (n > 0 && !p) throw std::invalid_argument("null device pointer");
  }
}

}  // namespace

void register_variation(py::module_& m) {
  py::class_<ec::DeviceVariation>(m, "DeviceVariation",
                                  "Sampling, mutation, crossover and tournaments on the device "
                                  "(CPU twins: _core.variation_*).")
      .def(py::init([](const py::array_t<int32_t, py::array::c_style | py::array::forcecast>& c) {
             if (c.ndim() != 1) throw std::invalid_argument("choices must be 1-D");
             return std::make_unique<ec::DeviceVariation>(
                 std::vector<int32_t>(c.data(), c.data() + c.size()));
           }),
           py::arg("choices"))
      .def_property_readonly("n_genes", &ec::DeviceVariation::n_genes)
      .def(
          "sample",
          [](const ec::DeviceVariation& v, uint64_t seed, int64_t n, uintptr_t out,
             uintptr_t stream) {
            need_ptrs(n, {out});
            v.sample(seed, n, reinterpret_cast<int32_t*>(out), stream);
          },
          py::arg("seed"), py::arg("n"), py::arg("out"), py::arg("stream") = 0)
      .def(
          "mutate",
          [](const ec::DeviceVariation& v, uint64_t seed, double rate, uintptr_t in, int64_t n,
             uintptr_t out, uintptr_t stream) {
            need_ptrs(n, {in, out});
            if (!(rate >= 0.0 && rate <= 1.0))
              throw std::invalid_argument("rate must be in [0, 1]");
            v.mutate(seed, rate, reinterpret_cast<const int32_t*>(in), n,
                     reinterpret_cast<int32_t*>(out), stream);
          },
          py::arg("seed"), py::arg("rate"), py::arg("genomes"), py::arg("n"), py::arg("out"),
          py::arg("stream") = 0)
      .def(
          "crossover",
          [](const ec::DeviceVariation& v, uint64_t seed, uintptr_t a, uintptr_t b, int64_t n,
             uintptr_t out, uintptr_t stream) {
            need_ptrs(n, {a, b, out});
            v.crossover(seed, reinterpret_cast<const int32_t*>(a),
                        reinterpret_cast<const int32_t*>(b), n, reinterpret_cast<int32_t*>(out),
                        stream);
          },
          py::arg("seed"), py::arg("a"), py::arg("b"), py::arg("n"), py::arg("out"),
          py::arg("stream") = 0)
      .def(
          "tournament",
          [](const ec::DeviceVariation& v, uint64_t seed, uintptr_t score, int64_t n_scores,
             int32_t size, int64_t n, uintptr_t out, uintptr_t stream) {
            need_ptrs(n, {score, out});
            if (n > 0 && (n_scores < 1 || size < 1)) {
              throw std::invalid_argument("n_scores and size must be >= 1");
            }
            v.tournament(seed, reinterpret_cast<const double*>(score), n_scores, size, n,
                         reinterpret_cast<int64_t*>(out), stream);
          },
          py::arg("seed"), py::arg("score"), py::arg("n_scores"), py::arg("size"), py::arg("n"),
          py::arg("out"), py::arg("stream") = 0);
}
