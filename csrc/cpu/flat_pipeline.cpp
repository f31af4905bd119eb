// CPU twin of the CUDA flat pipeline: the same per-genome source (esm/flat_pipeline.hpp), run
// serially, so tests on machines without a GPU check exactly what the device kernels compute.
#include "esm/flat_pipeline.hpp"

#include <algorithm>
#include <stdexcept>

namespace esm::flat {

int32_t walk_of(const std::string& space) {
  if (space == "spec") return kSpecWalk;
  if (space == "nb201") return kNb201Walk;
  throw std::invalid_argument("flat pipeline: no device cost walk for space '" + space + "'");
}

void costs_twin(int32_t walk, const int64_t* config, const int32_t* choices, int64_t G,
                int n_slots, const int32_t* genomes, int64_t n, int64_t* totals, int64_t* slots,
                int64_t* bad) {
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

}  // namespace esm::flat
