// Bindings for the CPU timer: raw per-sample times as float64 arrays (seconds per call).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "esm/timer.hpp"

namespace py = pybind11;

namespace {

void check_counts(int64_t inner, int64_t samples) {
  if (inner < 1) throw std::invalid_argument("inner must be >= 1, got " + std::to_string(inner));
  if (samples < 0 || samples > 100000000) {
    throw std::invalid_argument("samples must be in [0, 1e8], got " + std::to_string(samples));
  }
}

// The GIL is held for the whole block: every iteration calls into Python and the only C++
// work between calls is a clock read, so releasing it would add noise, not concurrency.
py::array_t<double> time_callable(const py::object& fn, int64_t inner, int64_t samples,
                                  const std::string& clock) {
  if (!PyCallable_Check(fn.ptr())) throw std::invalid_argument("fn must be callable");
  check_counts(inner, samples);
  if (clock != "wall" && clock != "thread_cpu") {
    throw std::invalid_argument("clock must be 'wall' or 'thread_cpu', got '" + clock + "'");
  }
  py::array_t<double> out(samples);
  double* data = out.mutable_data();
  PyObject* f = fn.ptr();
  auto call = [f] {
    PyObject* r = PyObject_CallNoArgs(f);
    if (r == nullptr) throw py::error_already_set();
    Py_DECREF(r);
  };
  if (clock == "wall") {
    esm::timer::time_blocks(call, inner, samples, data);
  } else {
    esm::timer::time_blocks_thread_cpu(call, inner, samples, data);
  }
  return out;
}

py::array_t<double> timer_overhead(int64_t samples) {
  check_counts(1, samples);
  py::array_t<double> out(samples);
  double* data = out.mutable_data();
  py::gil_scoped_release release;
  esm::timer::empty_blocks(samples, data);
  return out;
}

py::array_t<double> time_busy_wait(double seconds, int64_t inner, int64_t samples) {
  check_counts(inner, samples);
  if (!(seconds >= 0.0) || seconds > 60.0) throw std::invalid_argument("seconds must be in [0, 60]");
  py::array_t<double> out(samples);
  double* data = out.mutable_data();
  py::gil_scoped_release release;
  esm::timer::time_busy_wait(seconds, inner, samples, data);
  return out;
}

}  // namespace

void register_timer(py::module_& m) {
  m.def("time_callable", &time_callable, py::arg("fn"), py::arg("inner"), py::arg("samples"),
        py::arg("clock") = "wall",
        "Time `samples` blocks of `inner` calls of the Python callable `fn` on the monotonic "
        "clock (clock='wall') or the calling thread's CPU-time clock (clock='thread_cpu'); "
        "returns float64 [samples] of seconds per call (block time / inner).");
  m.def("thread_cpu_time", &esm::timer::thread_cpu_now,
        "CPU time of the calling thread in seconds (CLOCK_THREAD_CPUTIME_ID).");
  m.def("busy_wait", [](double seconds) {
          if (!(seconds >= 0.0) || seconds > 60.0) {
            throw std::invalid_argument("busy_wait: seconds must be in [0, 60]");
          }
          py::gil_scoped_release release;
          esm::timer::busy_wait(seconds);
        }, py::arg("seconds"),
        "Spin on the monotonic clock for `seconds` (GIL released): a workload of known length.");
  m.def("time_busy_wait", &time_busy_wait, py::arg("seconds"), py::arg("inner"),
        py::arg("samples"), "Time busy-waits entirely in C++ (seconds per call, float64).");
  m.def("timer_overhead", &timer_overhead, py::arg("samples"),
        "Per-sample overhead of the timer: blocks around an empty body, seconds, float64.");
  m.def("clock_resolution", [](int64_t reads) {
          if (reads < 1) throw std::invalid_argument("reads must be >= 1");
          py::gil_scoped_release release;
          return esm::timer::clock_resolution(reads);
        }, py::arg("reads") = 1000, "Smallest observed clock increment in seconds.");
  m.def("clock_tick", &esm::timer::clock_tick, "Nominal tick of the monotonic clock, seconds.");
  m.def("monotonic", &esm::timer::now, "Seconds on the monotonic (steady) clock.");
}
