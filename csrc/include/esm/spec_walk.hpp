// The spec walker's interpreter as host and device code (esm/hd.hpp): csrc/cpu/space_spec.cpp
// and the CUDA pipeline compile this one source, so both walk a program to the same integers.
// The program layout is described in esm/spec.hpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "esm/channels.hpp"
#include "esm/costs.hpp"
#include "esm/hd.hpp"
#include "esm/spec.hpp"

namespace esm::spec {

// The float64 whose bit pattern is `bits` (the program stores reals as int64 words).
ESM_HD inline double bits_to_double(int64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
#endif
}

// Read-only view of a checked program.
struct View {
  const int64_t* p;
  ESM_HD explicit View(const int64_t* program) : p(program) {}
  ESM_HD int64_t h(int64_t k) const { return p[k]; }
  ESM_HD int64_t genes() const { return p[kHGenes]; }
  ESM_HD int64_t slots() const { return p[kHSlots]; }
  ESM_HD const int64_t* param(int64_t i) const { return p + p[kHParamsOff] + i * kParamWords; }
  ESM_HD const int64_t* instr(int64_t i) const { return p + p[kHInstrOff] + i * kInstrWords; }
  ESM_HD const int64_t* seg(int64_t i) const { return p + p[kHSegsOff] + i * kSegWords; }
  ESM_HD const int64_t* opt(int64_t i) const { return p + p[kHOptsOff] + i * 2; }
  ESM_HD const int64_t* key(int64_t i) const { return p + p[kHKeysOff] + i * 2; }
  ESM_HD const int64_t* choices() const { return p + p[kHChoicesOff]; }
  ESM_HD const int64_t* table() const { return p + p[kHTableOff]; }
  ESM_HD double real(int64_t i) const { return bits_to_double(p[p[kHRealsOff] + i]); }
  ESM_HD double value(int64_t param_index, const int32_t* g) const {
    const int64_t* r = param(param_index);
    return real(r[1] + (r[0] >= 0 ? g[r[0]] : 0));
  }
  ESM_HD int64_t ivalue(int64_t param_index, const int32_t* g) const {
    return static_cast<int64_t>(value(param_index, g));
  }
};

// Middle width: make_divisible(round(base * expand), divisor); Python's round() is
// round-half-even, which nearbyint gives under the default rounding mode.
ESM_HD inline int64_t rounded(int64_t base, double expand, int64_t divisor) {
#if defined(__CUDA_ARCH__)
  const double v = ::nearbyint(static_cast<double>(base) * expand);
#else
  const double v = std::nearbyint(static_cast<double>(base) * expand);
#endif
  return make_divisible(v, divisor);
}

// Conv + optional BN with "same" padding (odd kernels): out = (h - 1) / stride + 1.
ESM_HD inline void conv_bn(Accumulator& acc, int64_t cin, int64_t cout, int64_t k, int64_t stride,
                           int64_t groups, int64_t* h, int64_t* w, bool bn, bool bias) {
  acc.conv(cin, cout, k, stride, k / 2, groups, *h, *w, bias, h, w);
  if (bn) acc.batchnorm(cout);
}

// The shortcut of a residual block whose shape changes: 1x1 conv (stride) + BN.
ESM_HD inline void shortcut(Accumulator& acc, int64_t cin, int64_t cout, int64_t stride, int64_t h,
                            int64_t w) {
  if (stride != 1 || cin != cout) {
    acc.conv(cin, cout, 1, stride, 0, 1, h, w, false, nullptr, nullptr);
    acc.batchnorm(cout);
  }
}

// Output size of a pooling window (PyTorch's rule: in ceil mode the last window must start
// inside the input or its left padding).
ESM_HD inline int64_t pool_out(int64_t h, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  const int64_t span = h + 2 * pad - k;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= h + pad) --out;
  return out;
}

struct State {
  int64_t c, h, w;
};

ESM_HD inline void run(const View& v, const int64_t* in, const int32_t* g, State& s,
                       Accumulator& acc) {
  const int64_t op = in[0];
  const int64_t cout = in[1] >= 0 ? v.ivalue(in[1], g) : s.c;
  const int64_t k = in[2] >= 0 ? v.ivalue(in[2], g) : 1;
  const double e = in[3] >= 0 ? v.value(in[3], g) : 1.0;
  const bool se = in[4] >= 0 && v.value(in[4], g) != 0.0;
  const int64_t stride = in[5], flags = in[7];
  switch (op) {
    case kConv: {
      const int64_t groups = in[6] == 0 ? s.c : in[6];
      conv_bn(acc, s.c, cout, k, stride, groups, &s.h, &s.w, flags & kBn, flags & kBias);
      s.c = cout;
      break;
    }
    case kLinear:
      acc.linear(s.c * s.h * s.w, cout, flags & kBias);
      s.c = cout;
      s.h = s.w = 1;
      break;
    case kMBConv: {
      const int64_t cin = s.c, mid = rounded(cin, e, in[11]);
      if (mid != cin) conv_bn(acc, cin, mid, 1, 1, 1, &s.h, &s.w, true, false);
      conv_bn(acc, mid, mid, k, stride, mid, &s.h, &s.w, true, false);
      if (se) {
        const int64_t base = in[8] == 0 ? mid : cin;
        const int64_t red = make_divisible(static_cast<double>(base / in[9]), in[10]);
        acc.conv(mid, red, 1, 1, 0, 1, 1, 1, true, nullptr, nullptr);
        acc.conv(red, mid, 1, 1, 0, 1, 1, 1, true, nullptr, nullptr);
      }
      conv_bn(acc, mid, cout, 1, 1, 1, &s.h, &s.w, true, false);
      s.c = cout;
      break;
    }
    case kFbnet: {
      const int64_t cin = s.c, mid = rounded(cin, e, 1), groups = in[6];
      conv_bn(acc, cin, mid, 1, 1, groups, &s.h, &s.w, true, false);
      conv_bn(acc, mid, mid, k, stride, mid, &s.h, &s.w, true, false);
      conv_bn(acc, mid, cout, 1, 1, groups, &s.h, &s.w, true, false);
      s.c = cout;
      break;
    }
    case kBottleneck:
    case kBasic: {
      const int64_t cin = s.c, mid = rounded(cout, e, in[11]), h0 = s.h, w0 = s.w;
      if (op == kBottleneck) {
        conv_bn(acc, cin, mid, 1, 1, 1, &s.h, &s.w, true, false);
        conv_bn(acc, mid, mid, k, stride, 1, &s.h, &s.w, true, false);
        conv_bn(acc, mid, cout, 1, 1, 1, &s.h, &s.w, true, false);
      } else {
        conv_bn(acc, cin, mid, k, stride, 1, &s.h, &s.w, true, false);
        conv_bn(acc, mid, cout, k, 1, 1, &s.h, &s.w, true, false);
      }
      shortcut(acc, cin, cout, stride, h0, w0);
      s.c = cout;
      break;
    }
    case kSkip:
      if (stride != 1 || s.c != cout) {
        conv_bn(acc, s.c, cout, 1, stride, 1, &s.h, &s.w, true, false);
        s.c = cout;
      }
      break;
    case kPool: {
      s.h = pool_out(s.h, in[8], stride, in[9], in[10]);
      s.w = pool_out(s.w, in[8], stride, in[9], in[10]);
      break;
    }
    case kGlobalPool: s.h = s.w = 1; break;
    default: break;  // unreachable for a checked program
  }
}

ESM_HD inline bool segment_active(const View& v, const int64_t* sg, const int32_t* g) {
  return sg[1] < 0 || v.value(sg[1], g) > static_cast<double>(sg[2]);
}

// Interprets the segments of one genome up to `only` (all when only < 0); the costs of
// segment `only` go to `acc`, those of the segments before it to `sink`.
ESM_HD inline void interpret_until(const View& v, const int32_t* g, Accumulator& acc, int64_t only,
                                   Accumulator* sink) {
  State s{v.h(kHInputChannels), 0, 0};
  s.h = s.w = v.ivalue(v.h(kHResParam), g);
  const int64_t n = only < 0 ? v.h(kHSegs) : only + 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t* sg = v.seg(i);
    if (!segment_active(v, sg, g)) continue;
    int64_t start = sg[6], count = sg[7];
    if (sg[3] >= 0) {
      const int64_t* o = v.opt(sg[4] + g[sg[3]]);
      start = o[0];
      count = o[1];
    }
    Accumulator& out = (only < 0 || i == only) ? acc : *sink;
    out.set_slot(static_cast<int>(sg[0]));
    for (int64_t j = 0; j < count; ++j) run(v, v.instr(start + j), g, s, out);
  }
}

ESM_HD inline void interpret_one(const int64_t* program, const int32_t* genome, Accumulator& acc) {
  interpret_until(View(program), genome, acc, -1, nullptr);
}

// The table walk of one genome (program mode kTables): per active segment, the cost row picked
// by its keys. Gives what walk_batch's CPU table walk gives (the same rows, summed in the same
// segment order); totals [F] and slots [S, F] (or null) are accumulated into.
ESM_HD inline void table_walk_one(const int64_t* program, const int32_t* g, int64_t* totals,
                                  int64_t* slots) {
  const View v(program);
  const int64_t n_seg = v.h(kHSegs);
  const int64_t* table = v.table();
  for (int64_t k = 0; k < n_seg; ++k) {
    const int64_t* sg = v.seg(k);
    if (!segment_active(v, sg, g)) continue;
    int64_t row = 0;
    for (int64_t j = sg[8]; j < sg[8] + sg[9]; ++j) row += g[v.key(j)[0]] * v.key(j)[1];
    const int64_t* c = table + sg[10] + row * Accumulator::kFields;
    for (int64_t f = 0; f < Accumulator::kFields; ++f) totals[f] += c[f];
    if (slots && sg[0] >= 0) {
      for (int64_t f = 0; f < Accumulator::kFields; ++f)
        slots[sg[0] * Accumulator::kFields + f] += c[f];
    }
  }
}

}  // namespace esm::spec
