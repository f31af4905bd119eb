// Compiled encoders and the fused genomes -> costs -> features -> model pipeline.
//
// The arithmetic mirrors the NumPy encoders of esm.surrogate.encoders operation by operation
// (same operand order, numpy's pairwise summation for row sums) so that the features agree to
// the last bit in practice; the Python side verifies the agreement when it builds a plan.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/encode.hpp"
#include "esm/encode_row.hpp"
#include "esm/parallel.hpp"

namespace esm::predict {

double pairwise_sum(const double* a, int64_t n, int64_t stride) {
  if (n < 8) {
    double res = 0.0;
    for (int64_t i = 0; i < n; ++i) res += a[i * stride];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j * stride];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[(i + j) * stride];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i * stride];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2, stride) + pairwise_sum(a + n2 * stride, n - n2, stride);
}

namespace {

// Checks a kStageChoice op's ints (encode.hpp) against the genes and slots; its column count.
int64_t check_stage_choice(const std::vector<int32_t>& in, const std::vector<int32_t>& choices,
                           int64_t n_slots) {
  const auto n = static_cast<int64_t>(in.size());
  const auto bad = [] { throw std::invalid_argument("encoder plan: malformed stagechoice op"); };
  if (n < 2 || in[0] <= 0 || in[0] > Accumulator::kFields || n < 2 + in[0]) bad();
  const int32_t nf = in[0];
  for (int32_t f = 0; f < nf; ++f) {
    if (in[1 + f] < 0 || in[1 + f] >= Accumulator::kFields)
      throw std::invalid_argument("encoder plan: unknown cost field");
  }
  int64_t pos = 1 + nf;
  const int32_t groups = in[pos++];
  if (groups < 0) bad();
  int64_t cols = 0;
  for (int32_t q = 0; q < groups; ++q) {
    if (pos + 2 > n) bad();
    const int32_t k = in[pos], pairs = in[pos + 1];
    if (k <= 0 || pairs < 0 || pos + 2 + 2 * static_cast<int64_t>(pairs) > n) bad();
    for (int32_t j = 0; j < pairs; ++j) {
      const int32_t s = in[pos + 2 + 2 * j], gene = in[pos + 3 + 2 * j];
      if (s < 0 || s >= n_slots || gene < 0 || gene >= static_cast<int32_t>(choices.size()) ||
          choices[gene] != k) {
        throw std::invalid_argument("encoder plan: stagechoice slot or gene out of range");
      }
    }
    cols += static_cast<int64_t>(k) * nf;
    pos += 2 + 2 * static_cast<int64_t>(pairs);
  }
  if (pos != n) bad();
  return cols;
}

}  // namespace

bool EncodePlan::onehot_only() const {
  for (const Op& op : ops) {
    if (op.kind != OpKind::kOnehot) return false;
  }
  return !ops.empty();
}

void EncodePlan::check(const SpaceKernel& space, const int64_t* config) {
  const std::vector<int32_t> space_choices = space.choices(config);
  const int64_t G = static_cast<int64_t>(choices.size());
  if (G != static_cast<int64_t>(space_choices.size())) {
    throw std::invalid_argument("encoder plan: " + std::to_string(G) + " genes, the space has " +
                                std::to_string(space_choices.size()));
  }
  if (choices != space_choices) {
    throw std::invalid_argument("encoder plan: gene choices differ from the space's");
  }
  if (n_slots != space.n_slots(config)) {
    throw std::invalid_argument("encoder plan: wrong slot count");
  }
  max_choice = 0;
  for (int32_t c : choices) {
    if (c <= 0) throw std::invalid_argument("encoder plan: choices must be positive");
    max_choice = std::max(max_choice, c);
  }
  if (static_cast<int64_t>(slot_gene.size()) != n_slots ||
      static_cast<int64_t>(slot_active.size()) != n_slots * max_choice) {
    throw std::invalid_argument("encoder plan: slot activity table has the wrong shape");
  }
  for (int32_t sg : slot_gene) {
    if (sg >= G) throw std::invalid_argument("encoder plan: slot activity gene out of range");
  }
  if (pixel_gene >= G) throw std::invalid_argument("encoder plan: pixel gene out of range");
  if (pixel_gene >= 0 && static_cast<int64_t>(pixel_table.size()) < choices[pixel_gene]) {
    throw std::invalid_argument("encoder plan: pixel table shorter than the gene's choices");
  }
  if (pixel_gene < 0 && pixel_table.empty()) pixel_table.assign(1, 0.0);
  if (ops.empty()) throw std::invalid_argument("encoder plan: no ops");
  n_features_ = 0;
  needs_costs_ = false;
  for (const Op& op : ops) {
    switch (op.kind) {
      case OpKind::kOnehot: {
        if (static_cast<int64_t>(op.ints.size()) != G) {
          throw std::invalid_argument("encoder plan: onehot needs the slot of every gene");
        }
        for (int32_t s : op.ints) {
          if (s >= n_slots) throw std::invalid_argument("encoder plan: onehot slot out of range");
        }
        for (int32_t c : choices) n_features_ += c;
        break;
      }
      case OpKind::kScalars:
        for (int32_t c : op.ints) {
          if (c < kMacs || c > kFixedMacs)
            throw std::invalid_argument("encoder plan: unknown scalar code");
          if (c != kActiveSlots && c != kInputPixels) needs_costs_ = true;
        }
        n_features_ += static_cast<int64_t>(op.ints.size());
        break;
      case OpKind::kSlots:
        for (int32_t c : op.ints) {
          if (c < 0 || c >= Accumulator::kFields)
            throw std::invalid_argument("encoder plan: unknown cost field");
        }
        n_features_ += n_slots * static_cast<int64_t>(op.ints.size());
        needs_costs_ = true;
        break;
      case OpKind::kRoofline:
        if (static_cast<int64_t>(op.ints.size()) != n_slots || op.reals.size() != 4 ||
            op.n_stages <= 0) {
          throw std::invalid_argument("encoder plan: roofline needs [S] stages and 4 numbers");
        }
        for (int32_t s : op.ints) {
          if (s < 0 || s >= op.n_stages)
            throw std::invalid_argument("encoder plan: stage out of range");
        }
        n_features_ += op.n_stages + 5;
        needs_costs_ = true;
        break;
      case OpKind::kStageChoice:
        n_features_ += check_stage_choice(op.ints, choices, n_slots);
        needs_costs_ = true;
        break;
      default: throw std::invalid_argument("encoder plan: unknown op");
    }
  }
}

namespace {

inline bool slot_active(const EncodePlan& p, const int32_t* g, int32_t s) {
  const int32_t gene = p.slot_gene[s];
  return gene < 0 || p.slot_active[static_cast<size_t>(s) * p.max_choice + g[gene]] != 0;
}

struct Roof {
  double peak, bw, launch, batch;
  void times(double macs, double params, double act, double layers, double* c, double* m,
             double* l) const {
    *c = 2.0 * macs * batch / (peak * 1e12) * 1e3;
    *m = (2.0 * act * batch + 4.0 * params) / (bw * 1e9) * 1e3;
    *l = layers * launch * 1e-3;
  }
};

void roofline(const Op& op, const int64_t* tot, const int64_t* sl, int64_t S, double* out,
              std::vector<double>& buf) {
  const Roof r{op.reals[0], op.reals[1], op.reals[2], op.reals[3]};
  // buf: c[S] m[S] l[S] per_slot[S] cb[S] mb[S] sl_float[4][S] stage_tmp[S]
  buf.resize(static_cast<size_t>(11 * S));
  double *c = buf.data(), *m = c + S, *l = m + S, *per = l + S, *cb = per + S, *mb = cb + S;
  double* f[4] = {mb + S, mb + 2 * S, mb + 3 * S, mb + 4 * S};
  double* tmp = mb + 5 * S;
  for (int64_t s = 0; s < S; ++s) {
    for (int k = 0; k < 4; ++k) f[k][s] = static_cast<double>(sl[s * 4 + k]);
    r.times(f[0][s], f[1][s], f[2][s], f[3][s], &c[s], &m[s], &l[s]);
    per[s] = std::max(c[s], m[s]) + l[s];
    const bool bound = c[s] >= m[s];
    cb[s] = c[s] * (bound ? 1.0 : 0.0);
    mb[s] = m[s] * (bound ? 0.0 : 1.0);
  }
  const int64_t K = op.n_stages;
  for (int64_t k = 0; k < K; ++k) {
    int64_t cnt = 0;
    for (int64_t s = 0; s < S; ++s) {
      if (op.ints[s] == k) tmp[cnt++] = per[s];
    }
    out[k] = pairwise_sum(tmp, cnt);
  }
  double fc, fm, fl;
  r.times(static_cast<double>(tot[0]) - pairwise_sum(f[0], S),
          static_cast<double>(tot[1]) - pairwise_sum(f[1], S),
          static_cast<double>(tot[2]) - pairwise_sum(f[2], S),
          static_cast<double>(tot[3]) - pairwise_sum(f[3], S), &fc, &fm, &fl);
  const double fixed = std::max(fc, fm) + fl;
  out[K] = fixed;
  out[K + 1] = pairwise_sum(out, K) + fixed;
  out[K + 2] = pairwise_sum(cb, S) + fc * (fc >= fm ? 1.0 : 0.0);
  out[K + 3] = pairwise_sum(mb, S) + fm * (fc < fm ? 1.0 : 0.0);
  out[K + 4] = pairwise_sum(l, S) + fl;
}

}  // namespace

void encode(const EncodePlan& p, const int32_t* genomes, int64_t n, const int64_t* totals,
            const int64_t* slots, double* X) {
  const int64_t G = static_cast<int64_t>(p.choices.size()), S = p.n_slots, F = p.n_features();
  std::vector<double> buf;
  std::vector<uint8_t> active(static_cast<size_t>(S));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* g = genomes + i * G;
    const int64_t* tot = totals ? totals + i * 4 : nullptr;
    const int64_t* sl = slots ? slots + i * S * 4 : nullptr;
    double* x = X + i * F;
    for (int64_t s = 0; s < S; ++s) active[s] = slot_active(p, g, static_cast<int32_t>(s));
    for (const Op& op : p.ops) {
      switch (op.kind) {
        case OpKind::kOnehot: {
          double* o = x;
          for (int64_t j = 0; j < G; ++j) {
            const int32_t c = p.choices[j];
            std::memset(o, 0, sizeof(double) * c);
            const int32_t s = op.ints[j];
            o[g[j]] = (s < 0 || active[s]) ? 1.0 : 0.0;
            o += c;
          }
          x = o;
          break;
        }
        case OpKind::kScalars:
          for (int32_t code : op.ints) {
            double v = 0.0;
            switch (code) {
              case kMacs: v = static_cast<double>(tot[0]); break;
              case kParams: v = static_cast<double>(tot[1]); break;
              case kActivationBytes: v = static_cast<double>(tot[2]); break;
              case kWeightBytes: v = static_cast<double>(tot[1] * kBytesPerElement); break;
              case kLayers: v = static_cast<double>(tot[3]); break;
              case kActiveSlots: {
                int64_t a = 0;
                for (int64_t s = 0; s < S; ++s) a += active[s];
                v = static_cast<double>(a);
                break;
              }
              case kInputPixels:
                v = p.pixel_gene < 0 ? p.pixel_table[0] : p.pixel_table[g[p.pixel_gene]];
                break;
              case kFixedMacs: {
                int64_t m = tot[0];
                for (int64_t s = 0; s < S; ++s) m -= sl[s * 4];
                v = static_cast<double>(m);
                break;
              }
            }
            *x++ = v;
          }
          break;
        case OpKind::kSlots:
          for (int64_t s = 0; s < S; ++s) {
            for (int32_t f : op.ints) *x++ = static_cast<double>(sl[s * 4 + f]);
          }
          break;
        case OpKind::kRoofline:
          roofline(op, tot, sl, S, x, buf);
          x += op.n_stages + 5;
          break;
        case OpKind::kStageChoice:
          x += flat::stage_choice_row(op.ints.data(), g, sl, 0,
                                      [x](int64_t j, double v) { x[j] = v; });
          break;
      }
    }
  }
}

void encode_genomes(const SpaceKernel& space, const int64_t* config, const EncodePlan& plan,
                    const int32_t* genomes, int64_t n, int64_t g, double* X, int threads) {
  validate_genomes(space, genomes, n, g, config);
  const int64_t S = plan.n_slots, F = plan.n_features();
  const bool costs = plan.needs_costs();
  parallel_for(n, threads, 1024, [&](int64_t b, int64_t e) {
    constexpr int64_t kSub = 1024;
    std::vector<int64_t> totals, slots;
    if (costs) {
      totals.resize(static_cast<size_t>(kSub * Accumulator::kFields));
      slots.resize(static_cast<size_t>(kSub * S * Accumulator::kFields));
    }
    for (int64_t s0 = b; s0 < e; s0 += kSub) {
      const int64_t k = std::min(kSub, e - s0);
      const int32_t* gs = genomes + s0 * g;
      if (costs) compute_costs(space, gs, k, g, config, 1, totals.data(), slots.data());
      encode(plan, gs, k, costs ? totals.data() : nullptr, costs ? slots.data() : nullptr,
             X + s0 * F);
    }
  });
}

void predict_genomes(const SpaceKernel& space, const int64_t* config, const EncodePlan& plan,
                     const Model& model, const int32_t* genomes, int64_t n, int64_t g, double* out,
                     int threads, int64_t chunk) {
  if (plan.n_features() != model.n_features()) {
    throw std::invalid_argument("the encoder makes " + std::to_string(plan.n_features()) +
                                " features, the model expects " +
                                std::to_string(model.n_features()));
  }
  if (static_cast<int64_t>(plan.choices.size()) != g) {
    throw std::invalid_argument(std::string(space.name) + ": genomes have " + std::to_string(g) +
                                " genes, the space has " + std::to_string(plan.choices.size()));
  }
  if (n <= 0) return;
  const int64_t F = plan.n_features(), S = plan.n_slots;

  // A linear model over one-hot features: one table entry per (gene, choice).
  std::vector<double> w;
  const bool lut = plan.ops.size() == 1 && plan.ops[0].kind == OpKind::kOnehot && model.affine(&w);
  // Other models with a one-hot path (trees) over one-hot-only plans: per row, the column of
  // every (op, gene)'s hot value (-1 when its slot is inactive), no dense feature matrix.
  const bool hot = !lut && plan.onehot_only() && model.accepts_hot();
  const int64_t n_hot = hot ? g * static_cast<int64_t>(plan.ops.size()) : 0;
  // A thread start is worth it only for a few thousand LUT rows or the model's min_piece.
  const int64_t piece = piece_rows(n, threads, chunk, lut ? 8192 : model.min_piece());
  const int64_t pieces = (n + piece - 1) / piece;
  std::vector<double> table;
  std::vector<int64_t> offset(static_cast<size_t>(g) + 1, 0);
  for (int64_t j = 0; j < g; ++j) offset[j + 1] = offset[j] + plan.choices[j];
  if (lut) {
    table.assign(static_cast<size_t>(offset[g]), 0.0);
    for (int64_t k = 0; k < offset[g]; ++k) table[k] = w[k];
  }
  // One-hot tables: per slot the gene deciding its activity (a gene whose table row is all
  // ones when none does) and per hot entry its gene, first column and slot (S = always).
  std::vector<int32_t> slot_gene_ext, hot_gene, hot_base, hot_slot;
  std::vector<uint8_t> slot_table;
  if (hot) {
    slot_table = plan.slot_active;
    slot_gene_ext.assign(static_cast<size_t>(S), 0);
    for (int64_t s = 0; s < S; ++s) {
      const int32_t sg = plan.slot_gene[s];
      slot_gene_ext[s] = sg < 0 ? 0 : sg;
      if (sg < 0)
        std::fill_n(slot_table.begin() + s * plan.max_choice, plan.max_choice, uint8_t{1});
    }
    int32_t base = 0;
    for (const Op& op : plan.ops) {
      for (int64_t j = 0; j < g; ++j) {
        hot_gene.push_back(static_cast<int32_t>(j));
        hot_base.push_back(base + static_cast<int32_t>(offset[j]));
        hot_slot.push_back(op.ints[j] < 0 ? static_cast<int32_t>(S) : op.ints[j]);
      }
      base += static_cast<int32_t>(offset[g]);
    }
  }
  const bool log_target = model.common().target == Target::kLog;
  const bool need_costs = plan.needs_costs();

  parallel_for(pieces, threads, 1, [&](int64_t b, int64_t e) {
    // Work inside a piece goes in sub-blocks that stay in cache; memory per worker is
    // kSub * (F + 4 S + 4) values whatever the chunk size.
    constexpr int64_t kSub = 512;
    const int64_t rows = std::min({piece, n, kSub});
    std::vector<int64_t> totals, slots;
    std::vector<double> X, scratch;
    std::vector<int32_t> hot_cols;
    std::vector<uint8_t> active(static_cast<size_t>(S));
    std::vector<int32_t> active_ext(static_cast<size_t>(S) + 1, 1);
    if (need_costs) {
      totals.resize(static_cast<size_t>(rows * Accumulator::kFields));
      slots.resize(static_cast<size_t>(rows * S * Accumulator::kFields));
    }
    if (hot) {
      hot_cols.resize(static_cast<size_t>(rows * n_hot));
    } else if (!lut) {
      X.resize(static_cast<size_t>(rows * F));
      scratch.resize(X.size());
    }
    for (int64_t p = b; p < e; ++p) {
      const int64_t r0 = p * piece, m = std::min(piece, n - r0);
      const int32_t* gp = genomes + r0 * g;
      for (int64_t i = 0; i < m; ++i) {  // validated per piece, in the workers
        const int32_t* row = gp + i * g;
        bool ok = true;
        for (int64_t j = 0; j < g; ++j)
          ok &= static_cast<uint32_t>(row[j]) < static_cast<uint32_t>(plan.choices[j]);
        if (!ok) {
          for (int64_t j = 0; j < g; ++j) {
            if (row[j] < 0 || row[j] >= plan.choices[j]) {
              throw std::invalid_argument(std::string(space.name) + ": genome " +
                                          std::to_string(r0 + i) + ", gene " + std::to_string(j) +
                                          " is " + std::to_string(row[j]) + ", must be in [0, " +
                                          std::to_string(plan.choices[j]) + ")");
            }
          }
        }
      }
      if (lut) {
        const int32_t* gene_slot = plan.ops[0].ints.data();
        for (int64_t i = 0; i < m; ++i) {
          const int32_t* row = gp + i * g;
          for (int64_t s = 0; s < S; ++s)
            active[s] = slot_active(plan, row, static_cast<int32_t>(s));
          double y = w[F];
          for (int64_t j = 0; j < g; ++j) {
            const int32_t s = gene_slot[j];
            if (s < 0 || active[s]) y += table[offset[j] + row[j]];
          }
          out[r0 + i] = log_target ? std::exp(y) : y;
        }
        continue;
      }
      if (hot) {
        for (int64_t s0 = 0; s0 < m; s0 += rows) {
          const int64_t k = std::min(rows, m - s0);
          for (int64_t i = 0; i < k; ++i) {
            const int32_t* row = gp + (s0 + i) * g;
            int32_t* h = hot_cols.data() + i * n_hot;
            // Branch-free: slot activity is a table lookup (entry S is "always active") and
            // an inactive gene's column becomes -1 by masking.
            for (int64_t s = 0; s < S; ++s) {
              active_ext[s] = slot_table[s * plan.max_choice + row[slot_gene_ext[s]]];
            }
            for (int64_t c = 0; c < n_hot; ++c) {
              const int32_t col = hot_base[c] + row[hot_gene[c]];
              const int32_t on = active_ext[hot_slot[c]];  // 0 or 1
              h[c] = (col & -on) | (on - 1);
            }
          }
          model.predict_hot(hot_cols.data(), k, n_hot, out + r0 + s0);
        }
        continue;
      }
      for (int64_t s0 = 0; s0 < m; s0 += rows) {
        const int64_t k = std::min(rows, m - s0);
        const int32_t* gs = gp + s0 * g;
        if (need_costs) compute_costs(space, gs, k, g, config, 1, totals.data(), slots.data());
        encode(plan, gs, k, need_costs ? totals.data() : nullptr,
               need_costs ? slots.data() : nullptr, X.data());
        model.predict_rows(X.data(), k, scratch.data(), out + r0 + s0);
      }
    }
  });
}

}  // namespace esm::predict
