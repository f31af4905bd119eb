// Folded linear models: table lookups per genome (see esm/fold.hpp).
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "esm/fold.hpp"
#include "esm/parallel.hpp"

namespace esm::predict {

void Fold::check() const {
  const int64_t G = n_genes();
  const int64_t T = static_cast<int64_t>(table_ptr.size()) - 1;
  if (T < 0 || static_cast<int64_t>(key_ptr.size()) != T + 1) {
    throw std::invalid_argument("fold: key_ptr and table_ptr must both hold T + 1 entries");
  }
  if (key_genes.size() != key_strides.size()) {
    throw std::invalid_argument("fold: key_genes and key_strides differ in length");
  }
  for (int32_t c : choices) {
    if (c < 1) throw std::invalid_argument("fold: every gene needs at least one choice");
  }
  if (key_ptr[0] != 0 || table_ptr[0] != 0 ||
      key_ptr[T] != static_cast<int64_t>(key_genes.size()) ||
      table_ptr[T] != static_cast<int64_t>(values.size())) {
    throw std::invalid_argument("fold: pointers do not cover the keys and values");
  }
  for (int64_t t = 0; t < T; ++t) {
    if (key_ptr[t + 1] < key_ptr[t] || table_ptr[t + 1] <= table_ptr[t]) {
      throw std::invalid_argument("fold: table " + std::to_string(t) + " is empty or unordered");
    }
    int64_t largest = 0;  // index of the last entry the key can reach
    for (int64_t j = key_ptr[t]; j < key_ptr[t + 1]; ++j) {
      const int32_t g = key_genes[j];
      if (g < 0 || g >= G) {
        throw std::invalid_argument("fold: key gene " + std::to_string(g) + " out of range");
      }
      const int64_t s = key_strides[j];
      if (s < 0 || (choices[g] > 1 && s > (int64_t{1} << 40))) {
        throw std::invalid_argument("fold: bad key stride");
      }
      largest += s * (choices[g] - 1);
    }
    if (largest >= table_ptr[t + 1] - table_ptr[t]) {
      throw std::invalid_argument("fold: table " + std::to_string(t) +
                                  " is smaller than its key's range");
    }
  }
}

void predict_folded(const Fold& fold, const int32_t* genomes, int64_t n, double* out, int threads,
                    int64_t chunk) {
  const int64_t G = fold.n_genes();
  const int64_t T = static_cast<int64_t>(fold.table_ptr.size()) - 1;
  const int32_t* kg = fold.key_genes.data();
  const int64_t* ks = fold.key_strides.data();
  const int64_t* kp = fold.key_ptr.data();
  const int64_t* tp = fold.table_ptr.data();
  const double* vals = fold.values.data();
  const int32_t* ch = fold.choices.data();
  const int64_t step = std::max<int64_t>(1, chunk);
  std::atomic<int64_t> bad{n * G};  // first bad gene (flat index); no lookup reads past it
  parallel_for(n, threads, 8192, [&](int64_t b, int64_t e) {
    for (int64_t c0 = b; c0 < e; c0 += step) {
      const int64_t c1 = std::min(e, c0 + step);
      for (int64_t i = c0; i < c1; ++i) {
        const int32_t* g = genomes + i * G;
        // A bad gene must never index a table: check the row before its lookups.
        bool ok = true;
        for (int64_t k = 0; k < G; ++k)
          ok &= static_cast<uint32_t>(g[k]) < static_cast<uint32_t>(ch[k]);
        if (!ok) {
          int64_t k = 0;
          while (static_cast<uint32_t>(g[k]) < static_cast<uint32_t>(ch[k])) ++k;
          int64_t cur = bad.load();
          while (i * G + k < cur && !bad.compare_exchange_weak(cur, i * G + k)) {
          }
          return;
        }
        double y = fold.intercept;
        for (int64_t t = 0; t < T; ++t) {
          int64_t idx = tp[t];
          for (int64_t j = kp[t]; j < kp[t + 1]; ++j) idx += ks[j] * g[kg[j]];
          y += vals[idx];
        }
        out[i] = y;
      }
    }
  });
  const int64_t first = bad.load();
  if (first < n * G) {
    throw std::invalid_argument("genome " + std::to_string(first / G) + ", gene " +
                                std::to_string(first % G) + " is " +
                                std::to_string(genomes[first]) + ", expected 0.." +
                                std::to_string(fold.choices[first % G] - 1));
  }
}

}  // namespace esm::predict
