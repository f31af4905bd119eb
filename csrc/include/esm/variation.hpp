// Counter-based variation operators as host and device code (esm/hd.hpp): every random draw is
// splitmix64(seed, stream, counter) of the genome's row and gene, so the CUDA kernels
// (csrc/cuda/variation.cu, one thread per genome) and the CPU twins (csrc/cpu/variation.cpp,
// `_core.variation_*`) give exactly the same genomes for the same seed.
#pragma once

#include <cstdint>

#include "esm/hd.hpp"

namespace esm::variation {

ESM_HD inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The draw number `k` of row `i` under `seed` for operator `op` (a stream per operator).
ESM_HD inline uint64_t draw(uint64_t seed, uint64_t op, uint64_t i, uint64_t k) {
  return splitmix64(splitmix64(splitmix64(seed ^ (op * 0xD1B54A32D192ED03ull)) + i) + k);
}

// An integer in [0, n) from a 64-bit draw (multiply-high, no division).
ESM_HD inline int32_t below(uint64_t x, int32_t n) {
  return static_cast<int32_t>(((x >> 32) * static_cast<uint64_t>(n)) >> 32);
}

// A double in [0, 1) from a 64-bit draw.
ESM_HD inline double unit(uint64_t x) {
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

// High 64 bits of a * b.
ESM_HD inline uint64_t mulhi(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

enum Op : uint64_t { kSample = 1, kMutate = 2, kCrossover = 3, kTournament = 4 };

// Row i of a uniform sample: gene j uniform over choices[j].
ESM_HD inline void sample_row(uint64_t seed, int64_t i, const int32_t* choices, int64_t G,
                              int32_t* out) {
  for (int64_t j = 0; j < G; ++j) out[j] = below(draw(seed, kSample, i, j), choices[j]);
}

// Row i mutated: each gene with probability `rate` takes a different value (uniform over the
// others); genes with one choice stay.
ESM_HD inline void mutate_row(uint64_t seed, int64_t i, const int32_t* choices, int64_t G,
                              double rate, const int32_t* in, int32_t* out) {
  for (int64_t j = 0; j < G; ++j) {
    int32_t v = in[j];
    if (choices[j] > 1 && unit(draw(seed, kMutate, i, 2 * j)) < rate) {
      const int32_t r = below(draw(seed, kMutate, i, 2 * j + 1), choices[j] - 1);
      v = r >= v ? r + 1 : r;
    }
    out[j] = v;
  }
}

// Uniform crossover of two rows: gene j from a or b with probability 1/2 each.
ESM_HD inline void crossover_row(uint64_t seed, int64_t i, int64_t G, const int32_t* a,
                                 const int32_t* b, int32_t* out) {
  for (int64_t j = 0; j < G; ++j) out[j] = (draw(seed, kCrossover, i, j) >> 63) ? b[j] : a[j];
}

// Tournament of `size` uniform entrants over n scores (lower is better; ties to the first).
ESM_HD inline int64_t tournament_one(uint64_t seed, int64_t i, const double* score, int64_t n,
                                     int32_t size) {
  int64_t best = -1;
  for (int32_t k = 0; k < size; ++k) {
    const uint64_t x = draw(seed, kTournament, i, static_cast<uint64_t>(k));
    const auto c = static_cast<int64_t>(mulhi(x, static_cast<uint64_t>(n)));
    if (best < 0 || score[c] < score[best]) best = c;
  }
  return best;
}

// Whole batches on the host (the CPU twins; csrc/cpu/variation.cpp). Rows are [n, G].
void sample(uint64_t seed, const int32_t* choices, int64_t G, int64_t n, int32_t* out);
void mutate(uint64_t seed, const int32_t* choices, int64_t G, double rate, const int32_t* in,
            int64_t n, int32_t* out);
void crossover(uint64_t seed, int64_t G, const int32_t* a, const int32_t* b, int64_t n,
               int32_t* out);
void tournament(uint64_t seed, const double* score, int64_t n_scores, int32_t size, int64_t n,
                int64_t* out);

}  // namespace esm::variation
