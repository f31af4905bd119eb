// Bindings of the counter-based variation operators' CPU twins (esm/variation.hpp): the same
// genomes as _cuda.DeviceVariation for the same seed.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "esm/variation.hpp"
#include "genome_rows.hpp"

namespace py = pybind11;
namespace ev = esm::variation;

namespace {

using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

I32 checked_choices(const I32& choices) {
  if (choices.ndim() != 1 || choices.size() == 0) {
    throw std::invalid_argument("choices must be a non-empty 1-D array");
  }
  for (py::ssize_t j = 0; j < choices.size(); ++j) {
    if (choices.data()[j] < 1) throw std::invalid_argument("choices must be >= 1");
  }
  return choices;
}

}  // namespace

void register_variation(py::module_& m) {
  m.def(
      "variation_sample",
      [](const I32& choices_in, int64_t n, uint64_t seed) {
        const I32 choices = checked_choices(choices_in);
        if (n < 0) throw std::invalid_argument("n must be >= 0");
        const int64_t G = choices.size();
        py::array_t<int32_t> out({n, G});
        py::gil_scoped_release release;
        ev::sample(seed, choices.data(), G, n, out.mutable_data());
        return out;
      },
      py::arg("choices"), py::arg("n"), py::arg("seed"),
      "Uniform genomes [n, G] (the CPU twin of DeviceVariation.sample).");
  m.def(
      "variation_mutate",
      [](const I32& choices_in, const py::object& genomes, double rate, uint64_t seed) {
        const I32 choices = checked_choices(choices_in);
        const int64_t G = choices.size();
        const auto in = esm_bindings::genome_rows(genomes, G);
        if (!(rate >= 0.0 && rate <= 1.0)) throw std::invalid_argument("rate must be in [0, 1]");
        const int64_t n = in.shape(0);
        py::array_t<int32_t> out({n, G});
        py::gil_scoped_release release;
        ev::mutate(seed, choices.data(), G, rate, in.data(), n, out.mutable_data());
        return out;
      },
      py::arg("choices"), py::arg("genomes"), py::arg("rate"), py::arg("seed"),
      "Mutated copies: each gene changes with probability rate (CPU twin of the device op).");
  m.def(
      "variation_crossover",
      [](const py::object& a_in, const py::object& b_in, uint64_t seed) {
        const auto a0 = py::array::ensure(a_in);
        if (!a0 || a0.ndim() != 2) throw std::invalid_argument("parents must be [n, G] arrays");
        const int64_t G = a0.shape(1);
        const auto a = esm_bindings::genome_rows(a_in, G, "parents a");
        const auto b = esm_bindings::genome_rows(b_in, G, "parents b");
        if (a.shape(0) != b.shape(0)) throw std::invalid_argument("parents differ in rows");
        const int64_t n = a.shape(0);
        py::array_t<int32_t> out({n, G});
        py::gil_scoped_release release;
        ev::crossover(seed, G, a.data(), b.data(), n, out.mutable_data());
        return out;
      },
      py::arg("a"), py::arg("b"), py::arg("seed"),
      "Uniform crossover of row pairs (CPU twin of the device op).");
  m.def(
      "variation_tournament",
      [](const F64& score, int64_t n, int32_t size, uint64_t seed) {
        if (score.ndim() != 1 || score.size() == 0)
          throw std::invalid_argument("score must be 1-D, non-empty");
        if (n < 0 || size < 1) throw std::invalid_argument("n must be >= 0 and size >= 1");
        py::array_t<int64_t> out(n);
        py::gil_scoped_release release;
        ev::tournament(seed, score.data(), score.size(), size, n, out.mutable_data());
        return out;
      },
      py::arg("score"), py::arg("n"), py::arg("size"), py::arg("seed"),
      "n tournament winners (indices into score; lower wins) (CPU twin of the device op).");
}
