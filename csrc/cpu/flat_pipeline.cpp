// CPU twin of the CUDA flat pipeline: the same per-genome source (esm/flat_pipeline.hpp), run
// serially, so tests on machines without a GPU check exactly what the device kernels compute.
#include "esm/flat_pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace esm::flat {

int32_t walk_of(const std::string& space) {
  if (space == "spec") return kSpecWalk;
  if (space == "nb201") return kNb201Walk;
  throw std::invalid_argument("flat pipeline: no device cost walk for space '" + space + "'");
}

void costs_twin(int32_t walk, const int64_t* config, const int32_t* choices, int64_t G, int n_slots,
                const int32_t* genomes, int64_t n, int64_t* totals, int64_t* slots, int64_t* bad) {
  constexpr int64_t F = Accumulator::kFields;
  const int64_t S = n_slots;
  std::fill(totals, totals + n * F, 0);
  if (slots) std::fill(slots, slots + n * S * F, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* g = genomes + i * G;
    bad[i] = first_bad_gene(g, choices, G);
    if (bad[i] >= 0) continue;
    costs_one(walk, config, g, totals + i * F, slots ? slots + i * S * F : nullptr, n_slots);
  }
}

FlatPlan FlatPlanData::view() const {
  FlatPlan p;
  p.G = G;
  p.S = S;
  p.F = F;
  p.choices = choices.data();
  p.slot_gene = slot_gene.data();
  p.slot_active = slot_active.data();
  p.max_choice = max_choice;
  p.pixel_gene = pixel_gene;
  p.pixel_table = pixel_table.data();
  p.n_ops = static_cast<int32_t>(op_kind.size());
  p.op_kind = op_kind.data();
  p.op_start = op_start.data();
  p.op_count = op_count.data();
  p.op_stages = op_stages.data();
  p.ints = ints.data();
  p.reals = reals.data();
  return p;
}

FlatPlanData flatten(const predict::EncodePlan& plan) {
  FlatPlanData d;
  d.G = static_cast<int64_t>(plan.choices.size());
  d.S = plan.n_slots;
  d.F = plan.n_features();
  d.needs_costs = plan.needs_costs();
  if (d.S > kMaxSlots) {
    throw std::invalid_argument("flat pipeline: at most " + std::to_string(kMaxSlots) +
                                " slots, the plan has " + std::to_string(d.S));
  }
  d.choices = plan.choices;
  d.slot_gene = plan.slot_gene;
  d.slot_active = plan.slot_active;
  d.max_choice = plan.max_choice;
  d.pixel_gene = plan.pixel_gene;
  d.pixel_table = plan.pixel_table.empty() ? std::vector<double>{0.0} : plan.pixel_table;
  for (const predict::Op& op : plan.ops) {
    if (op.kind == predict::OpKind::kRoofline && op.n_stages > kMaxSlots) {
      throw std::invalid_argument("flat pipeline: too many roofline stages");
    }
    d.op_kind.push_back(static_cast<int32_t>(op.kind));
    d.op_start.push_back(static_cast<int32_t>(d.ints.size()));
    d.op_count.push_back(static_cast<int32_t>(op.ints.size()));
    d.op_stages.push_back(static_cast<int32_t>(op.n_stages));
    d.ints.insert(d.ints.end(), op.ints.begin(), op.ints.end());
    for (int k = 0; k < 4; ++k)
      d.reals.push_back(k < static_cast<int>(op.reals.size()) ? op.reals[k] : 0.0);
  }
  if (d.slot_gene.empty()) d.slot_gene.push_back(-1);
  if (d.slot_active.empty()) d.slot_active.push_back(0);
  if (d.ints.empty()) d.ints.push_back(0);
  return d;
}

FlatPipeline::FlatPipeline(const SpaceKernel& space, std::vector<int64_t> config,
                           const predict::EncodePlan& plan)
    : walk_(walk_of(space.name)), config_(std::move(config)), plan_(flatten(plan)) {}

void FlatPipeline::set_linear(LinearData lin) {
  const auto F = static_cast<size_t>(plan_.F);
  if (lin.coef.size() != F || lin.mean.size() != F || lin.scale.size() != F) {
    throw std::invalid_argument("flat pipeline: the linear model needs " + std::to_string(F) +
                                " coef, mean and scale values");
  }
  lin_ = std::move(lin);
  has_linear_ = true;
}

void FlatPipeline::features(const int32_t* genomes, int64_t n, double* X, int64_t* bad) const {
  const FlatPlan p = plan_.view();
  std::vector<int64_t> sl(static_cast<size_t>(std::max<int64_t>(1, p.S * Accumulator::kFields)));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* g = genomes + i * p.G;
    double* x = X + i * p.F;
    bad[i] = first_bad_gene(g, p.choices, p.G);
    if (bad[i] >= 0) {
      std::fill(x, x + p.F, std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    int64_t tot[Accumulator::kFields] = {0, 0, 0, 0};
    std::fill(sl.begin(), sl.end(), 0);
    costs_one(walk_, config_.data(), g, tot, sl.data(), static_cast<int>(p.S));
    encode_row(p, g, tot, sl.data(), [x](int64_t j, double v) { x[j] = v; });
  }
}

void FlatPipeline::predict_linear(const int32_t* genomes, int64_t n, double* out, int64_t* bad,
                                  int64_t* totals) const {
  if (!has_linear_) throw std::invalid_argument("flat pipeline: no linear model");
  const FlatPlan p = plan_.view();
  const LinearFold lin = lin_.view();
  std::vector<int64_t> sl(static_cast<size_t>(std::max<int64_t>(1, p.S * Accumulator::kFields)));
  for (int64_t i = 0; i < n; ++i) {
    out[i] = predict_linear_one(walk_, config_.data(), p, lin, genomes + i * p.G, bad + i,
                                sl.data(), totals ? totals + i * Accumulator::kFields : nullptr);
  }
}

}  // namespace esm::flat
