// Genome arrays at the binding boundary: shared by the cost and predictor bindings.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace esm_bindings {

namespace py = pybind11;

// Genomes as C-contiguous int32 [N, G]: other integer dtypes are range-checked and converted;
// floats, booleans and anything else are refused. `what` prefixes the messages.
inline py::array_t<int32_t> genome_rows(const py::object& obj, int64_t G,
                                        const std::string& what = "genomes") {
  if (!py::isinstance<py::array>(obj)) {
    throw std::invalid_argument(what + " must be a NumPy array [N, G]");
  }
  py::array a = obj.cast<py::array>();
  const char k = a.dtype().kind();
  if (k != 'i' && k != 'u') {
    throw std::invalid_argument(what + " must be integers, got dtype " +
                                py::str(a.dtype()).cast<std::string>());
  }
  if (a.ndim() != 2 || a.shape(1) != G) {
    throw std::invalid_argument(
        a.ndim() == 2 ? what + " have " + std::to_string(a.shape(1)) + " genes, expected " +
                            std::to_string(G) + " (shape [N, " + std::to_string(G) + "])"
                      : what + " must have shape [N, " + std::to_string(G) + "], got " +
                            std::to_string(a.ndim()) + " dimensions");
  }
  if (py::isinstance<py::array_t<int32_t>>(a) && (a.flags() & py::array::c_style)) {
    return a.cast<py::array_t<int32_t>>();
  }
  // uint64 values above INT64_MAX wrap to negative here and are refused below.
  auto wide = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  py::array_t<int32_t> out({a.shape(0), a.shape(1)});
  const int64_t* src = wide.data();
  int32_t* dst = out.mutable_data();
  for (py::ssize_t i = 0; i < wide.size(); ++i) {
    const int64_t v = src[i];
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      throw std::invalid_argument("genome " + std::to_string(i / G) + ", gene " +
                                  std::to_string(i % G) + " is " + std::to_string(v) +
                                  ", out of range");
    }
    dst[i] = static_cast<int32_t>(v);
  }
  return out;
}

}  // namespace esm_bindings
