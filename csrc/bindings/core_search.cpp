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

}  // namespace

void register_search(py::module_& m) {
  m.def("pareto_ranks_2d", &pareto_ranks_2d, py::arg("points"),
        "Front index (0 = non-dominated) of every point of an [N, 2] float64 array of two "
        "minimised objectives; O(N log N); identical points share a front.");
}
