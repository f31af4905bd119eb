// Non-dominated sorting helpers for multi-objective search (plain C++, no pybind11).
#pragma once

#include <cstdint>

namespace esm {

// Front index (0 = non-dominated) of every point of a two-objective set, both minimised.
// f is row-major [n, 2]; rank receives n values. O(n log n): the points are visited in
// lexicographic order; an earlier distinct point dominates a later one exactly when its second
// objective is not larger, so each point joins the first front whose smallest second objective
// so far is larger than its own (binary search; those minima grow with the front index).
// Identical points share a front. Values must be finite (checked by the caller).
void pareto_ranks_2d(const double* f, int64_t n, int64_t* rank);

}  // namespace esm

namespace esm {

// Winners of n tournaments of `size` members drawn uniformly with replacement from a population
// of `pop`: the member with the smallest violation and, among those, the smallest score (the
// first drawn on ties). Tournament i draws from its own counter-based stream (splitmix64 of
// seed and i), so the result does not depend on the number of threads. Values must not be NaN
// (checked by the caller).
void tournament_winners(const double* violation, const double* score, int64_t pop, int64_t n,
                        int64_t size, uint64_t seed, int threads, int64_t* winners);

}  // namespace esm
