#include <cstdint>
#include <vector>

#include "esm/parallel.hpp"
#include "esm/pareto.hpp"

namespace esm {
namespace {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform integer in [0, bound) by Lemire's multiply-shift (bias < bound / 2^64: negligible
// for populations far below 2^32).
inline int64_t below(uint64_t& state, uint64_t bound) {
  return static_cast<int64_t>((static_cast<__uint128_t>(splitmix64(state)) * bound) >> 64);
}

}  // namespace

void tournament_winners(const double* violation, const double* score, int64_t pop, int64_t n,
                        int64_t size, uint64_t seed, int threads, int64_t* winners) {
  // one cache line per draw instead of two
  struct Key {
    double violation, score;
  };
  std::vector<Key> keys(static_cast<size_t>(pop));
  for (int64_t j = 0; j < pop; ++j) keys[static_cast<size_t>(j)] = {violation[j], score[j]};
  const Key* key = keys.data();
  const uint64_t bound = static_cast<uint64_t>(pop);
  parallel_for(n, threads, 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      uint64_t state = seed ^ (static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ull);
      splitmix64(state);
      int64_t best = below(state, bound);
      Key kb = key[best];
      for (int64_t k = 1; k < size; ++k) {
        const int64_t c = below(state, bound);
        const Key kc = key[c];
        if (kc.violation < kb.violation || (kc.violation == kb.violation && kc.score < kb.score)) {
          best = c;
          kb = kc;
        }
      }
      winners[i] = best;
    }
  });
}

}  // namespace esm
