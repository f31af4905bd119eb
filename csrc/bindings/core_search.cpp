// Bindings for the search helpers. Array in, array out, GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <stdexcept>

#include "esm/pareto.hpp"

namespace py = pybind11;

namespace {

using Points = py::array_t<double, py::array::c_style | py::array::forcecast>;

py::array_t<int64_t> pareto_ranks_2d(const Points& f) {
  if (f.ndim() != 2 || f.shape(1) != 2) {
    throw std::invalid_argument("pareto_ranks_2d: points must be an [N, 2] array");
  }
  const int64_t n = f.shape(0);
  const double* data = f.data();
  for (int64_t i = 0; i < 2 * n; ++i) {
    if (!std::isfinite(data[i])) {
      throw std::invalid_argument("pareto_ranks_2d: objective values must be finite");
    }
  }
  py::array_t<int64_t> rank(n);
  {
    py::gil_scoped_release release;
    esm::pareto_ranks_2d(data, n, rank.mutable_data());
  }
  return rank;
}

using Values = py::array_t<double, py::array::c_style | py::array::forcecast>;

py::array_t<int64_t> tournament_winners(const Values& violation, const Values& score, int64_t n,
                                        int64_t size, uint64_t seed, int threads) {
  if (violation.ndim() != 1 || score.ndim() != 1 || violation.shape(0) != score.shape(0)) {
    throw std::invalid_argument(
        "tournament_winners: violation and score must be 1-D arrays "
        "of the same length");
  }
  const int64_t pop = violation.shape(0);
  if (pop < 1) throw std::invalid_argument("tournament_winners: empty population");
  if (n < 0) throw std::invalid_argument("tournament_winners: n must be >= 0");
  if (size < 1) throw std::invalid_argument("tournament_winners: size must be >= 1");
  const double* v = violation.data();
  const double* s = score.data();
  for (int64_t i = 0; i < pop; ++i) {
    if (std::isnan(v[i]) || std::isnan(s[i])) {
      throw std::invalid_argument("tournament_winners: violation and score must not be NaN");
    }
  }
  py::array_t<int64_t> winners(n);
  {
    py::gil_scoped_release release;
    esm::tournament_winners(v, s, pop, n, size, seed, threads, winners.mutable_data());
  }
  return winners;
}

}  // namespace

void register_search(py::module_& m) {
  m.def("pareto_ranks_2d", &pareto_ranks_2d, py::arg("points"),
        "Front index (0 = non-dominated) of every point of an [N, 2] float64 array of two "
        "minimised objectives; O(N log N); identical points share a front.");
  m.def("tournament_winners", &tournament_winners, py::arg("violation"), py::arg("score"),
        py::arg("n"), py::arg("size"), py::arg("seed"), py::arg("threads") = 0,
        "Indices of the winners of n tournaments of `size` members drawn with replacement: "
        "smallest violation, then smallest score (first drawn on ties). Deterministic for a "
        "seed at any thread count.");
}
