// esm._cuda bindings of the flat pipeline (esm/cuda_pipeline.hpp): device pointers come in as
// integers (cupy's data.ptr) with a stream handle; shapes are the caller's (esm.predictor.gpu).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/costs.hpp"
#include "esm/cuda_pipeline.hpp"
#include "esm/flat_pipeline.hpp"

namespace py = pybind11;
namespace ec = esm::cuda;

namespace {

using Config = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

std::unique_ptr<ec::DevicePipeline> make_pipeline(const std::string& name, const Config& config) {
  const esm::SpaceKernel& space = esm::find_space(name);
  esm::check_config(space, config.ndim(), config.data(), config.size());
  const int32_t walk = esm::flat::walk_of(name);
  return std::make_unique<ec::DevicePipeline>(
      walk, std::vector<int64_t>(config.data(), config.data() + config.size()),
      space.choices(config.data()), space.n_slots(config.data()));
}

}  // namespace

void register_pipeline(py::module_& m) {
  py::class_<ec::DevicePipeline>(m, "DevicePipeline",
                                 "Genomes on the device -> first bad gene and costs, one thread "
                                 "per genome (the CPU twin is _core.flat_costs).")
      .def(py::init(&make_pipeline), py::arg("space"), py::arg("config"))
      .def_static(
          "from_twin",
          [](const esm::flat::FlatPipeline& twin) {
            return std::make_unique<ec::DevicePipeline>(twin);
          },
          py::arg("twin"),
          "The whole pipeline of a _core.FlatPipeline (its encoder plan and linear model).")
      .def_property_readonly("n_features", &ec::DevicePipeline::n_features)
      .def_property_readonly("has_linear", &ec::DevicePipeline::has_linear)
      .def(
          "features",
          [](const ec::DevicePipeline& p, uintptr_t genomes, int64_t n, uintptr_t X, uintptr_t bad,
             uintptr_t stream) {
            if (n < 0) throw std::invalid_argument("n must be >= 0");
            if (n > 0 && (!genomes || !X || !bad)) {
              throw std::invalid_argument("genomes, X and bad must be device pointers");
            }
            py::gil_scoped_release release;
            p.features(reinterpret_cast<const int32_t*>(genomes), n, reinterpret_cast<double*>(X),
                       reinterpret_cast<int64_t*>(bad), stream);
          },
          py::arg("genomes"), py::arg("n"), py::arg("X"), py::arg("bad"), py::arg("stream") = 0,
          "Queue the encode kernel: genomes int32 [n, G] -> X float64 [n, F], bad int64 [n].")
      .def(
          "predict_linear",
          [](const ec::DevicePipeline& p, uintptr_t genomes, int64_t n, uintptr_t out,
             uintptr_t bad, uintptr_t stream, uintptr_t totals) {
            if (n < 0) throw std::invalid_argument("n must be >= 0");
            if (n > 0 && (!genomes || !out || !bad)) {
              throw std::invalid_argument("genomes, out and bad must be device pointers");
            }
            py::gil_scoped_release release;
            p.predict_linear(reinterpret_cast<const int32_t*>(genomes), n,
                             reinterpret_cast<double*>(out), reinterpret_cast<int64_t*>(bad),
                             stream, reinterpret_cast<int64_t*>(totals));
          },
          py::arg("genomes"), py::arg("n"), py::arg("out"), py::arg("bad"), py::arg("stream") = 0,
          py::arg("totals") = 0,
          "Queue the fused kernel: genomes int32 [n, G] -> latencies float64 [n], bad int64 [n] "
          "and, when totals is a device pointer (0: skip), the cost totals int64 [n, 4] of the "
          "same walk.")
      .def_property_readonly("n_genes", &ec::DevicePipeline::n_genes)
      .def_property_readonly("n_slots", &ec::DevicePipeline::n_slots)
      .def_property_readonly("shared_bytes", &ec::DevicePipeline::shared_bytes)
      .def(
          "costs",
          [](const ec::DevicePipeline& p, uintptr_t genomes, int64_t n, uintptr_t totals,
             uintptr_t slots, uintptr_t bad, uintptr_t stream) {
            if (n < 0) throw std::invalid_argument("n must be >= 0");
            if (n > 0 && (!genomes || !totals || !bad)) {
              throw std::invalid_argument("genomes, totals and bad must be device pointers");
            }
            py::gil_scoped_release release;
            p.costs(reinterpret_cast<const int32_t*>(genomes), n,
                    reinterpret_cast<int64_t*>(totals), reinterpret_cast<int64_t*>(slots),
                    reinterpret_cast<int64_t*>(bad), stream);
          },
          py::arg("genomes"), py::arg("n"), py::arg("totals"), py::arg("slots"), py::arg("bad"),
          py::arg("stream") = 0,
          "Queue the cost kernel on `stream`: genomes int32 [n, G], totals int64 [n, 4], slots "
          "int64 [n, S, 4] (0 to skip), bad int64 [n]; all device pointers.");
}
