// CPU twins of the device variation kernels: the same per-row source (esm/variation.hpp).
#include "esm/variation.hpp"

namespace esm::variation {

void sample(uint64_t seed, const int32_t* choices, int64_t G, int64_t n, int32_t* out) {
  for (int64_t i = 0; i < n; ++i) sample_row(seed, i, choices, G, out + i * G);
}

void mutate(uint64_t seed, const int32_t* choices, int64_t G, double rate, const int32_t* in,
            int64_t n, int32_t* out) {
  for (int64_t i = 0; i < n; ++i) mutate_row(seed, i, choices, G, rate, in + i * G, out + i * G);
}

void crossover(uint64_t seed, int64_t G, const int32_t* a, const int32_t* b, int64_t n,
               int32_t* out) {
  for (int64_t i = 0; i < n; ++i) crossover_row(seed, i, G, a + i * G, b + i * G, out + i * G);
}

void tournament(uint64_t seed, const double* score, int64_t n_scores, int32_t size, int64_t n,
                int64_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = tournament_one(seed, i, score, n_scores, size);
}

}  // namespace esm::variation
