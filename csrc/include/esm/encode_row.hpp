// One genome's encoded feature row as host and device code (esm/hd.hpp): the compiled encoder
// plan of esm/encode.hpp (the default `fcc` encoding and every other plan) flattened into plain
// arrays, so that the CUDA pipeline encodes one genome per thread and the CPU twin
// (csrc/cpu/flat_pipeline.cpp) runs the same source. Column values equal esm::predict::encode.
#pragma once

#include <cstdint>

#include "esm/hd.hpp"

namespace esm::flat {

// Most slots a flat plan may have (the per-genome roofline buffers live on the stack).
constexpr int64_t kMaxSlots = 32;

// A checked EncodePlan as plain arrays (no pointers to std containers; device-copyable).
struct FlatPlan {
  int64_t G = 0, S = 0, F = 0;
  const int32_t* choices = nullptr;      // [G]
  const int32_t* slot_gene = nullptr;    // [S]
  const uint8_t* slot_active = nullptr;  // [S * max_choice]
  int32_t max_choice = 0;
  int32_t pixel_gene = -1;
  const double* pixel_table = nullptr;
  int32_t n_ops = 0;
  const int32_t* op_kind = nullptr;    // [n_ops] esm::predict::OpKind
  const int32_t* op_start = nullptr;   // [n_ops] offset into ints
  const int32_t* op_count = nullptr;   // [n_ops]
  const int32_t* op_stages = nullptr;  // [n_ops] roofline stage count
  const int32_t* ints = nullptr;
  const double* reals = nullptr;  // [n_ops * 4] roofline numbers
};

// numpy's pairwise summation for n <= 128 (what esm::predict::pairwise_sum does there).
ESM_HD inline double pairwise_small(const double* a, int64_t n) {
  if (n < 8) {
    double res = 0.0;
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  double r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[j];
  int64_t i = 8;
  for (; i < n - (n % 8); i += 8) {
    for (int j = 0; j < 8; ++j) r[j] += a[i + j];
  }
  double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) res += a[i];
  return res;
}

ESM_HD inline void roof_times(const double* rr, double macs, double params, double act,
                              double layers, double* c, double* m, double* l) {
  *c = 2.0 * macs * rr[3] / (rr[0] * 1e12) * 1e3;
  *m = (2.0 * act * rr[3] + 4.0 * params) / (rr[1] * 1e9) * 1e3;
  *l = layers * rr[2] * 1e-3;
}

// The columns of a kStageChoice op (its ints: esm/encode.hpp) from column `col` on, through
// sink(j, value) in column order; returns the next column. Integer sums: exact, like the
// Python encoder's.
template <class Sink>
ESM_HD inline int64_t stage_choice_row(const int32_t* ints, const int32_t* g, const int64_t* sl,
                                       int64_t col, Sink&& sink) {
  const int32_t nf = ints[0];
  const int32_t* fields = ints + 1;
  int32_t pos = 1 + nf;
  const int32_t groups = ints[pos++];
  for (int32_t q = 0; q < groups; ++q) {
    const int32_t k = ints[pos], pairs = ints[pos + 1];
    const int32_t* pr = ints + pos + 2;
    for (int32_t v = 0; v < k; ++v) {
      for (int32_t f = 0; f < nf; ++f) {
        int64_t acc = 0;
        for (int32_t j = 0; j < pairs; ++j) {
          if (g[pr[2 * j + 1]] == v) acc += sl[pr[2 * j] * 4 + fields[f]];
        }
        sink(col++, static_cast<double>(acc));
      }
    }
    pos += 2 + 2 * pairs;
  }
  return col;
}

// Writes feature j of the row through sink(j, value), in column order; tot [4] and sl [S, 4]
// are the genome's costs (may be null when the plan needs none).
template <class Sink>
ESM_HD inline void encode_row(const FlatPlan& p, const int32_t* g, const int64_t* tot,
                              const int64_t* sl, Sink&& sink) {
  const int64_t S = p.S;
  bool active[kMaxSlots];
  for (int64_t s = 0; s < S; ++s) {
    const int32_t gene = p.slot_gene[s];
    active[s] = gene < 0 || p.slot_active[s * p.max_choice + g[gene]] != 0;
  }
  int64_t col = 0;
  for (int32_t o = 0; o < p.n_ops; ++o) {
    const int32_t* ints = p.ints + p.op_start[o];
    const int32_t count = p.op_count[o];
    switch (p.op_kind[o]) {
      case 0: {  // one-hot
        for (int64_t j = 0; j < p.G; ++j) {
          const int32_t c = p.choices[j], s = ints[j];
          const double hot = (s < 0 || active[s]) ? 1.0 : 0.0;
          for (int32_t k = 0; k < c; ++k) sink(col + k, k == g[j] ? hot : 0.0);
          col += c;
        }
        break;
      }
      case 1: {  // scalars (codes of esm::predict::Scalar)
        for (int32_t k = 0; k < count; ++k) {
          double v = 0.0;
          switch (ints[k]) {
            case 0: v = static_cast<double>(tot[0]); break;
            case 1: v = static_cast<double>(tot[1]); break;
            case 2: v = static_cast<double>(tot[2]); break;
            case 3: v = static_cast<double>(tot[1] * 4); break;
            case 4: v = static_cast<double>(tot[3]); break;
            case 5: {
              int64_t a = 0;
              for (int64_t s = 0; s < S; ++s) a += active[s];
              v = static_cast<double>(a);
              break;
            }
            case 6: v = p.pixel_gene < 0 ? p.pixel_table[0] : p.pixel_table[g[p.pixel_gene]]; break;
            case 7: {
              int64_t m = tot[0];
              for (int64_t s = 0; s < S; ++s) m -= sl[s * 4];
              v = static_cast<double>(m);
              break;
            }
            default: break;
          }
          sink(col++, v);
        }
        break;
      }
      case 2: {  // per-slot cost fields
        for (int64_t s = 0; s < S; ++s) {
          for (int32_t k = 0; k < count; ++k) sink(col++, static_cast<double>(sl[s * 4 + ints[k]]));
        }
        break;
      }
      case 3: {  // roofline (esm::predict's roofline, same operation order)
        const double* rr = p.reals + 4 * o;
        double c[kMaxSlots], m[kMaxSlots], l[kMaxSlots], per[kMaxSlots], cb[kMaxSlots],
            mb[kMaxSlots], tmp[kMaxSlots];
        double f0[kMaxSlots], f1[kMaxSlots], f2[kMaxSlots], f3[kMaxSlots];
        for (int64_t s = 0; s < S; ++s) {
          f0[s] = static_cast<double>(sl[s * 4]);
          f1[s] = static_cast<double>(sl[s * 4 + 1]);
          f2[s] = static_cast<double>(sl[s * 4 + 2]);
          f3[s] = static_cast<double>(sl[s * 4 + 3]);
          roof_times(rr, f0[s], f1[s], f2[s], f3[s], &c[s], &m[s], &l[s]);
          per[s] = (c[s] < m[s] ? m[s] : c[s]) + l[s];
          const bool bound = c[s] >= m[s];
          cb[s] = c[s] * (bound ? 1.0 : 0.0);
          mb[s] = m[s] * (bound ? 0.0 : 1.0);
        }
        const int32_t K = p.op_stages[o];
        double stage_sum[kMaxSlots];
        for (int32_t k = 0; k < K; ++k) {
          int64_t cnt = 0;
          for (int64_t s = 0; s < S; ++s) {
            if (ints[s] == k) tmp[cnt++] = per[s];
          }
          stage_sum[k] = pairwise_small(tmp, cnt);
          sink(col + k, stage_sum[k]);
        }
        double fc, fm, fl;
        roof_times(rr, static_cast<double>(tot[0]) - pairwise_small(f0, S),
                   static_cast<double>(tot[1]) - pairwise_small(f1, S),
                   static_cast<double>(tot[2]) - pairwise_small(f2, S),
                   static_cast<double>(tot[3]) - pairwise_small(f3, S), &fc, &fm, &fl);
        const double fixed = (fc < fm ? fm : fc) + fl;
        sink(col + K, fixed);
        sink(col + K + 1, pairwise_small(stage_sum, K) + fixed);
        sink(col + K + 2, pairwise_small(cb, S) + fc * (fc >= fm ? 1.0 : 0.0));
        sink(col + K + 3, pairwise_small(mb, S) + fm * (fc < fm ? 1.0 : 0.0));
        sink(col + K + 4, pairwise_small(l, S) + fl);
        col += K + 5;
        break;
      }
      case 4:  // costs per stage and choice (esm::predict::OpKind::kStageChoice)
        col = stage_choice_row(ints, g, sl, col, sink);
        break;
      default: break;
    }
  }
}

// The linear model folded into the encode: y = intercept + sum_j coef[j] (x_j - mean[j]) /
// scale[j], exp(y) for a log target.
struct LinearFold {
  const double* coef = nullptr;
  const double* mean = nullptr;
  const double* scale = nullptr;
  double intercept = 0.0;
  bool log_target = false;
};

}  // namespace esm::flat
