// The generic walker of spec-defined spaces; see esm/spec.hpp for the program layout and
// python/esm/spaces/blocks.py for the Python twin of every block formula.
#include "esm/spec.hpp"

#include "esm/spec_walk.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "esm/channels.hpp"

namespace esm::spec {
namespace {

constexpr int64_t F = Accumulator::kFields;

void fail(const std::string& what) {
  throw std::invalid_argument("spec: config (the compiled space program): " + what);
}

void need(bool ok, const char* what, int64_t index = -1) {
  if (!ok) fail(std::string(what) + (index >= 0 ? " (entry " + std::to_string(index) + ")" : ""));
}

bool in_range(int64_t off, int64_t count, int64_t limit) {
  return off >= 0 && count >= 0 && off <= limit && count <= limit - off;
}

// Value ranges per kind (docs/spaces.md, "Limits").
bool value_ok(int64_t kind, double x) {
  if (!std::isfinite(x)) return false;
  const bool integral = x == std::floor(x);
  switch (kind) {
    case kChannels: return integral && x >= 1 && x <= 16384;
    case kKernel: return integral && x >= 1 && x <= 15;
    case kExpand: return x > 0 && x <= 64;
    case kFlag: return x == 0 || x == 1;
    case kDepth: return integral && x >= 0 && x <= 64;
    case kResolution: return integral && x >= 1 && x <= 2048;
    default: return false;
  }
}

void check_param_ref(const View& v, int64_t index, int64_t kind, bool optional) {
  if (index < 0 && optional) return;
  need(index >= 0 && index < v.h(kHParams), "instruction refers to a missing parameter", index);
  need(v.param(index)[2] == kind, "instruction parameter of the wrong kind", index);
}

}  // namespace

void check_program(const int64_t* p, int64_t words) {
  need(words >= kHeaderWords, "shorter than its header");
  need(p[kHMagic] == kMagic && p[kHVersion] == kVersion, "not an esm spec program of version 1");
  need(p[kHWords] == words, "its length differs from its header");
  View v(p);
  const int64_t G = v.genes(), S = v.slots();
  need(G >= 1 && G <= (1 << 20) && S >= 0 && S <= (1 << 20), "bad gene or slot count");
  need(p[kHMode] == kInterpret || p[kHMode] == kTables, "unknown mode");
  need(p[kHInputChannels] >= 1 && p[kHInputChannels] <= 16384, "bad input channel count");
  const int64_t sections[][3] = {{kHParams, kHParamsOff, kParamWords},
                                 {kHInstr, kHInstrOff, kInstrWords},
                                 {kHSegs, kHSegsOff, kSegWords},
                                 {kHOpts, kHOptsOff, 2},
                                 {kHKeys, kHKeysOff, 2},
                                 {kHReals, kHRealsOff, 1},
                                 {kHTableWords, kHTableOff, 1}};
  for (const auto& sec : sections) {
    const int64_t n = p[sec[0]], off = p[sec[1]];
    need(n >= 0 && n <= words / sec[2] && in_range(off, n * sec[2], words),
         "a section lies outside the program");
  }
  need(in_range(p[kHChoicesOff], G, words), "the choices lie outside the program");
  const int64_t* choices = v.choices();
  for (int64_t j = 0; j < G; ++j)
    need(choices[j] >= 1 && choices[j] <= (1 << 20), "bad choice count", j);
  for (int64_t i = 0; i < p[kHParams]; ++i) {
    const int64_t* r = v.param(i);
    need(r[0] >= -1 && r[0] < G, "parameter gene out of range", i);
    const int64_t n = r[0] >= 0 ? choices[r[0]] : 1;
    need(in_range(r[1], n, p[kHReals]), "parameter values lie outside the program", i);
    for (int64_t j = 0; j < n; ++j)
      need(value_ok(r[2], v.real(r[1] + j)), "parameter value out of range", i);
  }
  check_param_ref(v, p[kHResParam], kResolution, false);
  for (int64_t i = 0; i < p[kHInstr]; ++i) {
    const int64_t* in = v.instr(i);
    need(in[0] >= kConv && in[0] <= kGlobalPool, "unknown instruction", i);
    check_param_ref(v, in[1], kChannels, in[0] != kLinear);
    check_param_ref(v, in[2], kKernel, true);
    check_param_ref(v, in[3], kExpand, true);
    check_param_ref(v, in[4], kFlag, true);
    need(in[5] >= 1 && in[5] <= 16, "stride out of range", i);
    need(in[6] >= 0 && in[6] <= 16384 && (in[6] > 0 || in[0] == kConv), "groups out of range", i);
    need(in[7] >= 0 && in[7] <= (kBn | kBias | kResidual), "unknown flags", i);
    if (in[0] == kMBConv) {
      need(in[8] == 0 || in[8] == 1, "bad SE base", i);
      need(in[9] >= 1 && in[9] <= 64 && in[10] >= 1 && in[10] <= 64, "bad SE rounding", i);
    }
    if (in[0] == kMBConv || in[0] == kBottleneck || in[0] == kBasic) {
      need(in[11] >= 1 && in[11] <= 64, "bad mid rounding", i);
    }
    if (in[0] == kPool) {
      need(in[8] >= 1 && in[8] <= 16 && in[9] >= 0 && in[9] < in[8] && (in[10] == 0 || in[10] == 1),
           "bad pooling window", i);
    }
  }
  for (int64_t i = 0; i < p[kHOpts]; ++i) {
    need(in_range(v.opt(i)[0], v.opt(i)[1], p[kHInstr]), "option range out of range", i);
  }
  for (int64_t i = 0; i < p[kHSegs]; ++i) {
    const int64_t* sg = v.seg(i);
    need(sg[0] >= -1 && sg[0] < S, "segment slot out of range", i);
    if (sg[1] >= 0) check_param_ref(v, sg[1], kDepth, false);
    need(sg[3] >= -1 && sg[3] < G, "segment option gene out of range", i);
    if (sg[3] >= 0) {
      need(sg[5] == choices[sg[3]] && in_range(sg[4], sg[5], p[kHOpts]), "bad option list", i);
    } else {
      need(in_range(sg[6], sg[7], p[kHInstr]), "segment instructions out of range", i);
    }
    need(in_range(sg[8], sg[9], p[kHKeys]), "segment keys out of range", i);
    int64_t rows = 1;
    for (int64_t k = sg[9] - 1; k >= 0; --k) {
      const int64_t* key = v.key(sg[8] + k);
      need(key[0] >= 0 && key[0] < G && key[1] == rows, "bad segment key", i);
      rows *= choices[key[0]];
      need(rows <= kMaxTableRows, "segment table too large", i);
    }
    need(sg[11] == rows && in_range(sg[10], rows * F, p[kHTableWords]), "bad segment table", i);
  }
}

void interpret(const int64_t* program, const int32_t* genome, Accumulator& acc) {
  interpret_until(View(program), genome, acc, -1, nullptr);
}

namespace {

void interpret_rows(const int64_t* program, const int32_t* genomes, int64_t n, int64_t* totals,
                    int64_t* slots) {
  const View v(program);
  const int64_t G = v.genes(), S = v.slots();
  for (int64_t i = 0; i < n; ++i) {
    Accumulator acc(totals + i * F, slots ? slots + i * S * F : nullptr,
                    slots ? static_cast<int>(S) : 0);
    interpret(program, genomes + i * G, acc);
  }
}

}  // namespace

namespace {

// A segment of the table walk: its guard as a bit mask over the depth gene's choices, its keys
// and its table region.
struct Seg {
  int64_t slot, gene, key_start, key_count, table_off;
  uint64_t mask;
};

struct Tables {
  const int64_t* table;
  const Seg* segs;
  int64_t n_seg;
  const int64_t* key_gene;
  const int64_t* key_stride;
};

// The table walk's hot loop, out of line and specialised on the per-slot detail.
template <bool kSlots>
__attribute__((noinline)) void table_rows(const Tables& t, const int32_t* genomes, int64_t n,
                                          int64_t G, int64_t S, int64_t* totals, int64_t* slots) {
  const int64_t* table = t.table;
  const Seg* sp = t.segs;
  const int64_t* kg = t.key_gene;
  const int64_t* ks = t.key_stride;
  const int64_t n_seg = t.n_seg;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* g = genomes + i * G;
    int64_t sum[F] = {0, 0, 0, 0};
    for (int64_t k = 0; k < n_seg; ++k) {
      const Seg& d = sp[k];
      if (d.gene >= 0 && !((d.mask >> g[d.gene]) & 1u)) continue;
      int64_t row = 0;
      for (int64_t j = d.key_start; j < d.key_start + d.key_count; ++j) row += g[kg[j]] * ks[j];
      const int64_t* c = table + d.table_off + row * F;
      for (int64_t f = 0; f < F; ++f) sum[f] += c[f];
      if (kSlots && d.slot >= 0) {
        int64_t* out = slots + (i * S + d.slot) * F;
        for (int64_t f = 0; f < F; ++f) out[f] += c[f];
      }
    }
    for (int64_t f = 0; f < F; ++f) totals[i * F + f] = sum[f];
  }
}

}  // namespace

void walk_batch(const int64_t* program, const int32_t* genomes, int64_t n, int64_t* totals,
                int64_t* slots) {
  const View v(program);
  const int64_t G = v.genes(), S = v.slots();
  if (v.h(kHMode) != kTables) {
    interpret_rows(program, genomes, n, totals, slots);
    return;
  }
  // Per call, a compact copy of the segments: the guard as a bit mask over the depth gene's
  // choices (depth genes have at most 65 choices; a guard on more falls back to the
  // interpreter's test), the keys as (gene, stride) pairs. Local copies also keep the
  // compiler from reloading them after every store to totals/slots.
  const int64_t n_seg = v.h(kHSegs);
  std::vector<Seg> segs(static_cast<size_t>(n_seg));
  std::vector<int64_t> key_gene(static_cast<size_t>(v.h(kHKeys))), key_stride(key_gene.size());
  for (size_t k = 0; k < key_gene.size(); ++k) {
    key_gene[k] = v.key(static_cast<int64_t>(k))[0];
    key_stride[k] = v.key(static_cast<int64_t>(k))[1];
  }
  for (int64_t k = 0; k < n_seg; ++k) {
    const int64_t* sg = v.seg(k);
    Seg& d = segs[static_cast<size_t>(k)];
    d = {sg[0], -1, sg[8], sg[9], sg[10], ~uint64_t{0}};
    if (sg[1] >= 0) {
      const int64_t* r = v.param(sg[1]);
      const int64_t choices = r[0] >= 0 ? v.choices()[r[0]] : 1;
      d.gene = r[0] >= 0 ? r[0] : 0;  // a constant guard reads gene 0 against a full mask
      d.mask = 0;
      for (int64_t c = 0; c < std::min<int64_t>(choices, 64); ++c) {
        if (v.real(r[1] + (r[0] >= 0 ? c : 0)) > static_cast<double>(sg[2]))
          d.mask |= uint64_t{1} << c;
      }
      if (r[0] < 0) d.mask = d.mask ? ~uint64_t{0} : 0;
      if (choices > 64) {  // pragma: no cover - depth limits keep this out of reach
        interpret_rows(program, genomes, n, totals, slots);
        return;
      }
    }
  }
  const Tables t{v.table(), segs.data(), n_seg, key_gene.data(), key_stride.data()};
  if (slots) {
    table_rows<true>(t, genomes, n, G, S, totals, slots);
  } else {
    table_rows<false>(t, genomes, n, G, S, totals, slots);
  }
}

bool tabulate(int64_t* program, int64_t words, int64_t check_genomes) {
  check_program(program, words);
  const View v(program);
  if (v.h(kHMode) != kTables) return false;
  const int64_t G = v.genes(), S = v.slots();
  const int64_t* choices = v.choices();
  int64_t* table = program + program[kHTableOff];
  std::vector<int32_t> g(static_cast<size_t>(G));
  int64_t discard[F];
  for (int64_t k = 0; k < v.h(kHSegs); ++k) {
    const int64_t* sg = v.seg(k);
    // Base genome: every gene 0 except the segment's depth gene, set to its deepest choice so
    // that the blocks before this one in its stage run too.
    std::fill(g.begin(), g.end(), 0);
    if (sg[1] >= 0) {
      const int64_t* r = v.param(sg[1]);
      if (r[0] >= 0) {
        int32_t best = 0;
        for (int32_t c = 1; c < choices[r[0]]; ++c) {
          if (v.real(r[1] + c) > v.real(r[1] + best)) best = c;
        }
        g[r[0]] = best;
      }
    }
    for (int64_t row = 0; row < sg[11]; ++row) {
      int64_t rest = row;
      for (int64_t j = 0; j < sg[9]; ++j) {
        const int64_t* key = v.key(sg[8] + j);
        g[key[0]] = static_cast<int32_t>(rest / key[1]);
        rest %= key[1];
      }
      int64_t* out = table + sg[10] + row * F;
      std::fill(out, out + F, 0);
      std::fill(discard, discard + F, 0);
      Accumulator acc(out, nullptr, 0), sink(discard, nullptr, 0);
      interpret_until(v, g.data(), acc, k, &sink);
    }
  }
  // Check the table walk against the interpreter on random genomes (splitmix64).
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state]() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::vector<int64_t> t1(F), t2(F), s1(static_cast<size_t>(S * F)), s2(static_cast<size_t>(S * F));
  for (int64_t i = 0; i < check_genomes; ++i) {
    for (int64_t j = 0; j < G; ++j)
      g[j] = static_cast<int32_t>(next() % static_cast<uint64_t>(choices[j]));
    std::fill(t1.begin(), t1.end(), 0);
    std::fill(s1.begin(), s1.end(), 0);
    std::fill(t2.begin(), t2.end(), 0);
    std::fill(s2.begin(), s2.end(), 0);
    Accumulator acc(t1.data(), S ? s1.data() : nullptr, static_cast<int>(S));
    interpret(program, g.data(), acc);
    walk_batch(program, g.data(), 1, t2.data(), S ? s2.data() : nullptr);
    if (t1 != t2 || s1 != s2) {
      program[kHMode] = kInterpret;
      return false;
    }
  }
  return true;
}

namespace {

std::vector<int32_t> spec_choices(const int64_t* config) {
  const View v(config);
  const int64_t* c = v.choices();
  return std::vector<int32_t>(c, c + v.genes());
}

int spec_slots(const int64_t* config) {
  return static_cast<int>(View(config).slots());
}

void spec_walk(const int32_t* genome, const int64_t* config, Accumulator& acc) {
  interpret(config, genome, acc);
}

void spec_batch(const int32_t* genomes, int64_t n, const int64_t* config, int64_t* totals,
                int64_t* slots) {
  walk_batch(config, genomes, n, totals, slots);
}

}  // namespace
}  // namespace esm::spec

namespace esm {
extern const SpaceKernel kSpec{"spec",
                               0,
                               &spec::spec_choices,
                               &spec::spec_slots,
                               &spec::spec_walk,
                               &spec::spec_batch,
                               &spec::check_program};
}  // namespace esm
