// esm._cuda: the optional CUDA module, imported lazily by esm.cuda.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "esm/cuda_device.hpp"

namespace py = pybind11;

void register_cuda_timer(py::module_& m);
void register_predict(py::module_& m);
void register_pipeline(py::module_& m);
void register_variation(py::module_& m);

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "esm compiled core (CUDA)";
  m.def("runtime_version", &esm::cuda::runtime_version);
  m.def("driver_version", &esm::cuda::driver_version);
  m.def("devices", [] {
    std::string why;
    std::vector<esm::cuda::DeviceInfo> devs;
    {
      py::gil_scoped_release release;
      devs = esm::cuda::devices(&why);
    }
    py::list out;
    for (const auto& d : devs) {
      py::dict x;
      x["index"] = d.index;
      x["name"] = d.name;
      x["compute_capability"] = std::to_string(d.major) + "." + std::to_string(d.minor);
      x["total_memory"] = d.total_memory;
      x["l2_cache_bytes"] = d.l2_cache_bytes;
      x["multiprocessors"] = d.multiprocessors;
      x["clock_khz"] = d.clock_khz;
      x["memory_clock_khz"] = d.memory_clock_khz;
      x["memory_bus_width"] = d.memory_bus_width;
      out.append(x);
    }
    return py::make_tuple(out, why);
  }, "(devices, reason): the usable CUDA devices, and why there are none when empty.");
  register_cuda_timer(m);
  register_predict(m);
  register_pipeline(m);
  register_variation(m);
}
