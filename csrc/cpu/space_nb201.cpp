// NAS-Bench-201's cell space; the cost walk is in esm/nb201.hpp (shared with the CUDA pipeline).
#include "esm/nb201.hpp"

namespace esm {
namespace {

std::vector<int32_t> choices(const int64_t*) {
  return std::vector<int32_t>(nb201::kEdges, nb201::kOps);
}

int n_slots(const int64_t*) {
  return nb201::kEdges;
}

void walk(const int32_t* g, const int64_t* config, Accumulator& acc) {
  nb201::walk(g, config, acc);
}

}  // namespace

extern const SpaceKernel kNb201{"nb201", nb201::kConfigSize, &choices, &n_slots, &walk};

}  // namespace esm
