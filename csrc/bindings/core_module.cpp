// esm._core: the module definition. Each area registers its functions from its own file.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_costs(py::module_& m);
void register_search(py::module_& m);
void register_timer(py::module_& m);
void register_predict(py::module_& m);
void register_flat(py::module_& m);
void register_variation(py::module_& m);

#ifndef ESM_VERSION
#define ESM_VERSION "0+unknown"
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "esm compiled core (CPU)";
  m.attr("__version__") = ESM_VERSION;
  register_costs(m);
  register_search(m);
  register_timer(m);
  register_predict(m);
  register_flat(m);
  register_variation(m);
}
