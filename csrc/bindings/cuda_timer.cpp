// Bindings of the CUDA event timer: Python callables enqueue work; arrays of ms and MHz out.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "esm/cuda_timer.hpp"

namespace py = pybind11;

namespace {

using esm::cuda::EventTimer;

std::function<void()> python_enqueue(const py::object& fn) {
  if (!PyCallable_Check(fn.ptr())) throw std::invalid_argument("fn must be callable");
  PyObject* f = fn.ptr();
  return [f] {
    PyObject* r = PyObject_CallNoArgs(f);
    if (r == nullptr) throw py::error_already_set();
    Py_DECREF(r);
  };
}

// Time n samples in batches of the pool size: enqueue with the GIL (Python calls), then
// synchronise once per batch with the GIL released.
py::tuple time_samples(EventTimer& t, const std::function<void()>& enqueue, uintptr_t stream,
                       int64_t inner, int64_t n) {
  if (n < 0) throw std::invalid_argument("samples must be >= 0");
  py::array_t<double> ms(n), mhz(n);
  double* pm = ms.mutable_data();
  double* pc = mhz.mutable_data();
  for (int64_t done = 0; done < n;) {
    const int64_t b = std::min<int64_t>(t.pool(), n - done);
    t.enqueue_batch(enqueue, stream, inner, b);
    {
      py::gil_scoped_release release;
      t.collect_batch(b, pm + done, pc + done);
    }
    done += b;
  }
  return py::make_tuple(ms, mhz);
}

struct PyGraph {
  uintptr_t handle = 0;
  ~PyGraph() { EventTimer::destroy_graph(handle); }
};

}  // namespace

void register_cuda_timer(py::module_& m) {
  py::class_<PyGraph, std::shared_ptr<PyGraph>>(m, "Graph",
                                                  "A captured CUDA graph (see EventTimer).");
  py::class_<EventTimer>(m, "EventTimer",
                         "CUDA-event timer: a pre-created event pool, events on the caller's "
                         "stream, one synchronisation per batch, optional L2 flush, SM-clock "
                         "probe per sample.")
      .def(py::init<int, int, bool>(), py::arg("device") = 0, py::arg("pool") = 256,
           py::arg("l2_flush") = false)
      .def("time",
           [](EventTimer& t, const py::object& fn, uintptr_t stream, int64_t inner,
              int64_t samples) {
             return time_samples(t, python_enqueue(fn), stream, inner, samples);
           },
           py::arg("fn"), py::arg("stream"), py::arg("inner"), py::arg("samples"),
           "Time `samples` blocks of `inner` calls of fn (which enqueues on `stream`); "
           "returns (ms per block float64 [samples], SM clock MHz float64 [samples]).")
      .def("capture_graph",
           [](EventTimer& t, const py::object& fn, uintptr_t stream, int64_t inner) {
             auto g = std::make_shared<PyGraph>();
             g->handle = t.capture_graph(python_enqueue(fn), stream, inner);
             return g;
           },
           py::arg("fn"), py::arg("stream"), py::arg("inner"),
           "Capture `inner` calls of fn on a non-default stream into a CUDA graph.")
      .def("time_graph",
           [](EventTimer& t, const std::shared_ptr<PyGraph>& g, uintptr_t stream,
              int64_t samples) {
             uintptr_t h = g->handle;
             auto launch = [&t, h, stream] { t.launch_graph(h, stream); };
             return time_samples(t, launch, stream, 1, samples);
           },
           py::arg("graph"), py::arg("stream"), py::arg("samples"),
           "Time `samples` replays of a captured graph; returns (ms, SM clock MHz).")
      .def("max_clock_mhz", &EventTimer::max_clock_mhz)
      .def_property_readonly("pool", &EventTimer::pool)
      .def_property_readonly("device", &EventTimer::device)
      .def_property_readonly("l2_bytes", &EventTimer::l2_bytes)
      .def_property_readonly("flush_bytes", &EventTimer::flush_bytes);
  m.def("nvml_info", [](int device) {
          py::gil_scoped_release release;
          return esm::cuda::nvml_info(device);
        }, py::arg("device") = 0,
        "NVML description of a device (clocks, power limit, temperature, clock-event "
        "reasons, driver) as strings; {'error': ...} where NVML is unavailable.");
}
