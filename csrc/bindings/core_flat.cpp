// Bindings of the flat pipeline's CPU twin (esm/flat_pipeline.hpp): the same per-genome source
// as the CUDA kernels of _cuda.DevicePipeline, run serially on the host (the test oracle).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/flat_pipeline.hpp"
#include "genome_rows.hpp"
#include "plan_dict.hpp"

namespace py = pybind11;
namespace ef = esm::flat;

namespace {

using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

std::vector<double> reals(const F64& a) {
  return std::vector<double>(a.data(), a.data() + a.size());
}

ef::FlatPipeline make(const std::string& name, const I64& config, const py::dict& plan) {
  const esm::SpaceKernel& space = esm::find_space(name);
  esm::check_config(space, config.ndim(), config.data(), config.size());
  return ef::FlatPipeline(space, std::vector<int64_t>(config.data(), config.data() + config.size()),
                          esm_bindings::parse_plan(space, config.data(), plan));
}

}  // namespace

void register_flat(py::module_& m) {
  py::class_<ef::FlatPipeline>(m, "FlatPipeline",
                               "CPU twin of _cuda.DevicePipeline: genomes -> first bad gene, "
                               "costs, encoded row and a folded linear model, one genome at a "
                               "time from the device kernels' source.")
      .def(py::init(&make), py::arg("space"), py::arg("config"), py::arg("plan"))
      .def_property_readonly("n_features", &ef::FlatPipeline::n_features)
      .def_property_readonly("n_genes", &ef::FlatPipeline::n_genes)
      .def(
          "set_linear",
          [](ef::FlatPipeline& p, const F64& coef, const F64& mean, const F64& scale,
             double intercept, const std::string& target) {
            if (target != "identity" && target != "log") {
              throw std::invalid_argument("flat pipeline: target must be identity or log");
            }
            p.set_linear({reals(coef), reals(mean), reals(scale), intercept, target == "log"});
          },
          py::arg("coef"), py::arg("mean"), py::arg("scale"), py::arg("intercept"),
          py::arg("target") = "identity", "Fold a linear model into the encode.")
      .def(
          "features",
          [](const ef::FlatPipeline& p, const py::object& genomes_in) {
            const auto g = esm_bindings::genome_rows(genomes_in, p.n_genes());
            const int64_t n = g.shape(0);
            py::array_t<double> X({n, p.n_features()});
            py::array_t<int64_t> bad(n);
            {
              py::gil_scoped_release release;
              p.features(g.data(), n, X.mutable_data(), bad.mutable_data());
            }
            return py::make_tuple(X, bad);
          },
          py::arg("genomes"), "(features [N, F] (NaN rows for bad genomes), bad [N]).")
      .def(
          "predict_linear",
          [](const ef::FlatPipeline& p, const py::object& genomes_in, bool costs) -> py::tuple {
            const auto g = esm_bindings::genome_rows(genomes_in, p.n_genes());
            const int64_t n = g.shape(0);
            py::array_t<double> out(n);
            py::array_t<int64_t> bad(n);
            const int64_t fields = esm::Accumulator::kFields;
            py::array_t<int64_t> totals({costs ? n : int64_t{0}, fields});
            {
              py::gil_scoped_release release;
              p.predict_linear(g.data(), n, out.mutable_data(), bad.mutable_data(),
                               costs ? totals.mutable_data() : nullptr);
            }
            if (costs) return py::make_tuple(out, bad, totals);
            return py::make_tuple(out, bad);
          },
          py::arg("genomes"), py::arg("costs") = false,
          "(predictions [N] (NaN for bad genomes), bad [N]); with costs=True also the cost "
          "totals [N, 4] of the same walk (zeros for bad genomes).");
}
