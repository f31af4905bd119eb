#include "esm/costs.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include "esm/parallel.hpp"

namespace esm {

const SpaceKernel& find_space(const std::string& name) {
  for (const SpaceKernel* s : registered_spaces()) {
    if (name == s->name) return *s;
  }
  throw std::invalid_argument("unknown search space '" + name + "'");
}

std::vector<std::string> space_names() {
  std::vector<std::string> names;
  for (const SpaceKernel* s : registered_spaces()) names.emplace_back(s->name);
  return names;
}

void check_config(const SpaceKernel& space, int64_t ndim, const int64_t* config, int64_t size) {
  if (ndim != 1) {
    throw std::invalid_argument(std::string(space.name) + ": config must be a 1-D array");
  }
  if (space.config_size == 0 && space.check) {
    space.check(config, size);
  } else if (size != space.config_size) {
    throw std::invalid_argument(std::string(space.name) + ": config must be a 1-D array of " +
                                std::to_string(space.config_size) + " integers");
  }
}

void validate_genomes(const SpaceKernel& space, const int32_t* genomes, int64_t n, int64_t g,
                      const int64_t* config) {
  std::vector<int32_t> choices = space.choices(config);
  if (static_cast<int64_t>(choices.size()) != g) {
    throw std::invalid_argument(std::string(space.name) + ": genomes have " + std::to_string(g) +
                                " genes, the space has " + std::to_string(choices.size()));
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* row = genomes + i * g;
    for (int64_t j = 0; j < g; ++j) {
      if (row[j] < 0 || row[j] >= choices[j]) {
        throw std::invalid_argument(std::string(space.name) + ": genome " + std::to_string(i) +
                                    ", gene " + std::to_string(j) + " is " +
                                    std::to_string(row[j]) + ", must be in [0, " +
                                    std::to_string(choices[j]) + ")");
      }
    }
  }
}

void compute_costs(const SpaceKernel& space, const int32_t* genomes, int64_t n, int64_t g,
                   const int64_t* config, int threads, int64_t* totals, int64_t* slots) {
  validate_genomes(space, genomes, n, g, config);
  const int S = slots ? space.n_slots(config) : 0;
  const int64_t F = Accumulator::kFields;
  parallel_for(n, threads, 4096, [&](int64_t b, int64_t e) {
    std::memset(totals + b * F, 0, sizeof(int64_t) * F * (e - b));
    if (slots) std::memset(slots + b * S * F, 0, sizeof(int64_t) * S * F * (e - b));
    if (space.batch) {
      space.batch(genomes + b * g, e - b, config, totals + b * F,
                  slots ? slots + b * S * F : nullptr);
      return;
    }
    for (int64_t i = b; i < e; ++i) {
      Accumulator acc(totals + i * F, slots ? slots + i * S * F : nullptr, S);
      space.walk(genomes + i * g, config, acc);
    }
  });
}

}  // namespace esm
