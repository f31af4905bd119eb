// The encoder plan dict of esm.predictor.plan.build_plan -> a checked esm::predict::EncodePlan;
// shared by the fused predictor and the flat pipeline bindings of _core and _cuda.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/costs.hpp"
#include "esm/encode.hpp"

namespace esm_bindings {

namespace py = pybind11;

template <class T>
std::vector<T> plan_ints(const py::dict& d, const char* name) {
  if (!d.contains(name)) {
    throw std::invalid_argument(std::string("encoder plan: missing '") + name + "'");
  }
  auto a = py::array_t < int64_t, py::array::c_style | py::array::forcecast > ::ensure(d[name]);
  if (!a) throw std::invalid_argument(std::string("encoder plan: '") + name + "' must be integers");
  std::vector<T> out;
  for (py::ssize_t i = 0; i < a.size(); ++i) out.push_back(static_cast<T>(a.data()[i]));
  return out;
}

inline std::vector<double> plan_reals(const py::dict& d, const char* name) {
  if (!d.contains(name)) return {};
  auto a = py::array_t < double, py::array::c_style | py::array::forcecast > ::ensure(d[name]);
  if (!a) throw std::invalid_argument(std::string("encoder plan: '") + name + "' must be numbers");
  return std::vector<double>(a.data(), a.data() + a.size());
}

// Parses and checks `plan` against `space` with `config`.
inline esm::predict::EncodePlan parse_plan(const esm::SpaceKernel& space, const int64_t* config,
                                           const py::dict& plan) {
  namespace ep = esm::predict;
  ep::EncodePlan p;
  p.choices = plan_ints<int32_t>(plan, "choices");
  p.n_slots = plan.contains("n_slots") ? plan["n_slots"].cast<int64_t>() : -1;
  p.slot_gene = plan_ints<int32_t>(plan, "slot_gene");
  p.slot_active = plan_ints<uint8_t>(plan, "slot_active");
  p.pixel_gene = plan.contains("pixel_gene") ? plan["pixel_gene"].cast<int32_t>() : -1;
  p.pixel_table = plan_reals(plan, "pixel_table");
  if (!plan.contains("ops")) throw std::invalid_argument("encoder plan: missing 'ops'");
  for (const py::handle& h : plan["ops"].cast<py::list>()) {
    py::dict o = h.cast<py::dict>();
    ep::Op op;
    const std::string kind = o["kind"].cast<std::string>();
    if (kind == "onehot") {
      op.kind = ep::OpKind::kOnehot;
    } else if (kind == "scalars") {
      op.kind = ep::OpKind::kScalars;
    } else if (kind == "slots") {
      op.kind = ep::OpKind::kSlots;
    } else if (kind == "roofline") {
      op.kind = ep::OpKind::kRoofline;
    } else if (kind == "stagechoice") {
      op.kind = ep::OpKind::kStageChoice;
    } else {
      throw std::invalid_argument("encoder plan: unknown op '" + kind + "'");
    }
    op.ints = plan_ints<int32_t>(o, "ints");
    op.reals = plan_reals(o, "reals");
    op.n_stages = o.contains("n_stages") ? o["n_stages"].cast<int64_t>() : 0;
    p.ops.push_back(std::move(op));
  }
  p.check(space, config);
  return p;
}

}  // namespace esm_bindings
