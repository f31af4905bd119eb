#include "esm/pareto.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

namespace esm {

void pareto_ranks_2d(const double* f, int64_t n, int64_t* rank) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(), [f](int64_t a, int64_t b) {
    if (f[2 * a] != f[2 * b]) return f[2 * a] < f[2 * b];
    if (f[2 * a + 1] != f[2 * b + 1]) return f[2 * a + 1] < f[2 * b + 1];
    return a < b;
  });
  std::vector<double> minima;  // smallest second objective of each front so far (ascending)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = order[static_cast<size_t>(i)];
    if (i > 0) {
      const int64_t q = order[static_cast<size_t>(i - 1)];
      if (f[2 * p] == f[2 * q] && f[2 * p + 1] == f[2 * q + 1]) {
        rank[p] = rank[q];  // identical points: same dominators, same front
        continue;
      }
    }
    const double v = f[2 * p + 1];
    const auto it = std::upper_bound(minima.begin(), minima.end(), v);
    const int64_t k = static_cast<int64_t>(it - minima.begin());
    if (it == minima.end()) {
      minima.push_back(v);
    } else {
      *it = v;
    }
    rank[p] = k;
  }
}

}  // namespace esm
