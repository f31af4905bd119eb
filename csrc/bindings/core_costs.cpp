// Bindings for batched architecture costs. Array in, array out, GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "esm/costs.hpp"
#include "esm/flat_pipeline.hpp"
#include "esm/spec.hpp"
#include "genome_rows.hpp"

namespace py = pybind11;

namespace {

using Config = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

const esm::SpaceKernel& checked_space(const std::string& name, const Config& config) {
  const esm::SpaceKernel& space = esm::find_space(name);
  esm::check_config(space, config.ndim(), config.data(), config.size());
  return space;
}

// Genomes [N, G] of `space` as int32 rows; integer dtypes only, each value range-checked.
py::array_t<int32_t> checked_genomes(const std::string& name, const esm::SpaceKernel& space,
                                     const py::object& genomes, const Config& config) {
  const auto G = static_cast<int64_t>(space.choices(config.data()).size());
  return esm_bindings::genome_rows(genomes, G, name + ": genomes");
}

py::tuple costs(const std::string& name, const py::object& genomes_in, const Config& config,
                int threads, bool detail) {
  const esm::SpaceKernel& space = checked_space(name, config);
  const auto genomes = checked_genomes(name, space, genomes_in, config);
  const int64_t n = genomes.shape(0), g = genomes.shape(1);
  const int64_t S = detail ? space.n_slots(config.data()) : 0;
  const int64_t F = esm::Accumulator::kFields;
  py::array_t<int64_t> totals({n, F});
  py::array_t<int64_t> slots({n, S, F});
  {
    py::gil_scoped_release release;
    esm::compute_costs(space, genomes.data(), n, g, config.data(), threads, totals.mutable_data(),
                       detail ? slots.mutable_data() : nullptr);
  }
  return py::make_tuple(totals, slots);
}

void validate(const std::string& name, const py::object& genomes_in, const Config& config) {
  const esm::SpaceKernel& space = checked_space(name, config);
  const auto genomes = checked_genomes(name, space, genomes_in, config);
  py::gil_scoped_release release;
  esm::validate_genomes(space, genomes.data(), genomes.shape(0), genomes.shape(1), config.data());
}

// CPU twin of the device pipeline's cost stage (esm/flat_pipeline.hpp): genomes are checked
// per row on the flat path (first bad gene, -1 when valid), not refused as a whole.
py::tuple flat_costs(const std::string& name, const py::object& genomes_in, const Config& config,
                     bool detail) {
  const esm::SpaceKernel& space = checked_space(name, config);
  const int32_t walk = esm::flat::walk_of(name);
  const std::vector<int32_t> choices = space.choices(config.data());
  const auto G = static_cast<int64_t>(choices.size());
  const auto genomes = esm_bindings::genome_rows(genomes_in, G, name + ": genomes");
  const int64_t n = genomes.shape(0);
  const int S = space.n_slots(config.data());
  const int64_t F = esm::Accumulator::kFields;
  py::array_t<int64_t> totals({n, F});
  py::array_t<int64_t> slots({n, detail ? static_cast<int64_t>(S) : int64_t{0}, F});
  py::array_t<int64_t> bad(n);
  {
    py::gil_scoped_release release;
    esm::flat::costs_twin(walk, config.data(), choices.data(), G, S, genomes.data(), n,
                          totals.mutable_data(), detail ? slots.mutable_data() : nullptr,
                          bad.mutable_data());
  }
  return py::make_tuple(totals, slots, bad);
}

}  // namespace

// Fills the cost tables of a spec program (a copy) and checks them against the interpreter.
py::tuple spec_tabulate(const Config& program, int64_t check_genomes) {
  if (program.ndim() != 1) throw std::invalid_argument("spec program must be a 1-D array");
  py::array_t<int64_t> out(program.shape(0));
  std::copy(program.data(), program.data() + program.size(), out.mutable_data());
  bool ok;
  {
    py::gil_scoped_release release;
    ok = esm::spec::tabulate(out.mutable_data(), out.shape(0), check_genomes);
  }
  return py::make_tuple(out, ok);
}

void register_costs(py::module_& m) {
  m.def("space_names", &esm::space_names, "Names of the search spaces the core knows.");
  m.def(
      "space_choices",
      [](const std::string& name, const Config& config) {
        return checked_space(name, config).choices(config.data());
      },
      py::arg("space"), py::arg("config"), "Number of choices of every gene.");
  m.def(
      "space_slots",
      [](const std::string& name, const Config& config) {
        return checked_space(name, config).n_slots(config.data());
      },
      py::arg("space"), py::arg("config"), "Number of searchable slots.");
  m.def("costs", &costs, py::arg("space"), py::arg("genomes"), py::arg("config"),
        py::arg("threads") = 0, py::arg("detail") = true,
        "Costs of a batch of genomes: (totals [N, 4], slots [N, S, 4]) as int64; fields are "
        "macs, params, activation_bytes, layers. detail=False leaves slots empty [N, 0, 4].");
  m.def("validate", &validate, py::arg("space"), py::arg("genomes"), py::arg("config"),
        "Raise ValueError naming the first out-of-range gene.");
  m.def("spec_tabulate", &spec_tabulate, py::arg("program"), py::arg("check_genomes") = 512,
        "(program with its cost tables filled, whether the table walk equals the interpreter on "
        "check_genomes random genomes; when not, the program interprets).");
  m.def("flat_costs", &flat_costs, py::arg("space"), py::arg("genomes"), py::arg("config"),
        py::arg("detail") = true,
        "CPU twin of the CUDA flat pipeline's cost stage: (totals [N, 4], slots [N, S, 4], "
        "bad [N]) with bad[i] the first out-of-range gene of row i (-1: valid; its costs 0).");
  m.attr("COST_FIELDS") = py::make_tuple("macs", "params", "activation_bytes", "layers");
}
