// Once-for-All MobileNetV3 (Cai et al., ICLR 2020), the OFAMobileNetV3 sub-network.
//
// Genome (choice indices): ks[20] in {3,5,7}, e[20] in {3,4,6}, d[5] in {2,3,4}, r index into
// the resolution list. Config: [stem, first_block, w1..w5, final_expand, last_channel,
// n_classes, n_resolutions, res_min, res_step].
//
// `walk` is the definition. The fast path uses that the spatial size entering every stage
// depends only on the resolution: it tabulates, per resolution, the fixed part and every
// (slot, kernel, expand) block by running the same code, then sums table rows per genome.
#include <algorithm>
#include <vector>

#include "esm/channels.hpp"
#include "esm/costs.hpp"

namespace esm {
namespace {

constexpr int kStages = 5, kMaxDepth = 4, kSlots = kStages * kMaxDepth;
constexpr int kGenes = 2 * kSlots + kStages + 1;
constexpr int64_t kKernels[3] = {3, 5, 7};
constexpr int64_t kExpands[3] = {3, 4, 6};
constexpr int64_t kStrides[kStages] = {2, 2, 2, 1, 2};
constexpr bool kSe[kStages] = {false, true, false, true, true};
constexpr int64_t F = Accumulator::kFields;
// config: stem, first, 5 stage widths, final expand, last, classes, resolutions, r0, step
constexpr int64_t kConfigSize = 13;

std::vector<int32_t> choices(const int64_t* config) {
  std::vector<int32_t> c(kGenes, 3);
  c[kGenes - 1] = static_cast<int32_t>(config[10]);
  return c;
}

int n_slots(const int64_t*) { return kSlots; }

int64_t resolution(const int64_t* config, int32_t index) { return config[11] + index * config[12]; }

void stem(const int64_t* config, int64_t* h, int64_t* w, Accumulator& acc) {
  const int64_t s = config[0], first = config[1];
  acc.conv(3, s, 3, 2, 1, 1, *h, *w, false, h, w);
  acc.batchnorm(s);
  acc.conv(s, s, 3, 1, 1, s, *h, *w, false, h, w);  // depthwise, expand ratio 1
  acc.batchnorm(s);
  acc.conv(s, first, 1, 1, 0, 1, *h, *w, false, h, w);
  acc.batchnorm(first);
}

// Block j of stage s; returns the output size through h, w.
void block(const int64_t* config, int s, int j, int64_t k, int64_t expand, int64_t* h,
           int64_t* w, Accumulator& acc) {
  const int64_t in = j == 0 ? config[1 + s] : config[2 + s], out = config[2 + s];
  const int64_t mid = make_divisible(static_cast<double>(in * expand), 8);
  acc.conv(in, mid, 1, 1, 0, 1, *h, *w, false, h, w);
  acc.batchnorm(mid);
  acc.conv(mid, mid, k, j == 0 ? kStrides[s] : 1, k / 2, mid, *h, *w, false, h, w);
  acc.batchnorm(mid);
  if (kSe[s]) {
    const int64_t red = make_divisible(static_cast<double>(mid / 4), 8);
    acc.conv(mid, red, 1, 1, 0, 1, 1, 1, true, nullptr, nullptr);
    acc.conv(red, mid, 1, 1, 0, 1, 1, 1, true, nullptr, nullptr);
  }
  acc.conv(mid, out, 1, 1, 0, 1, *h, *w, false, h, w);
  acc.batchnorm(out);
}

void head(const int64_t* config, int64_t h, int64_t w, Accumulator& acc) {
  const int64_t in = config[6], final_expand = config[7], last = config[8];
  acc.conv(in, final_expand, 1, 1, 0, 1, h, w, false, &h, &w);
  acc.batchnorm(final_expand);
  acc.conv(final_expand, last, 1, 1, 0, 1, 1, 1, false, nullptr, nullptr);  // after pooling
  acc.linear(last, config[9], true);
}

void walk(const int32_t* g, const int64_t* config, Accumulator& acc) {
  const int32_t* ks = g;
  const int32_t* ex = g + kSlots;
  const int32_t* depth = g + 2 * kSlots;
  int64_t h = resolution(config, g[kGenes - 1]), w = h;
  acc.set_slot(-1);
  stem(config, &h, &w, acc);
  for (int s = 0; s < kStages; ++s) {
    for (int j = 0; j < depth[s] + 2; ++j) {
      const int slot = s * kMaxDepth + j;
      acc.set_slot(slot);
      block(config, s, j, kKernels[ks[slot]], kExpands[ex[slot]], &h, &w, acc);
    }
  }
  acc.set_slot(-1);
  head(config, h, w, acc);
}

// Per resolution: fixed part [F], and per slot and (kernel, expand) the block's [F].
struct Table {
  std::vector<int64_t> fixed;   // [R, F]
  std::vector<int64_t> blocks;  // [R, kSlots, 9, F]
};

Table tabulate(const int64_t* config) {
  const int64_t R = config[10];
  Table t{std::vector<int64_t>(R * F, 0), std::vector<int64_t>(R * kSlots * 9 * F, 0)};
  for (int64_t r = 0; r < R; ++r) {
    int64_t h = resolution(config, static_cast<int32_t>(r)), w = h;
    Accumulator fixed(&t.fixed[r * F], nullptr, 0);
    stem(config, &h, &w, fixed);
    for (int s = 0; s < kStages; ++s) {
      int64_t hs = h, ws = w;  // every block of the stage after the first sees the output size
      for (int j = 0; j < kMaxDepth; ++j) {
        for (int c = 0; c < 9; ++c) {
          int64_t hb = hs, wb = ws;
          Accumulator acc(&t.blocks[((r * kSlots + s * kMaxDepth + j) * 9 + c) * F], nullptr, 0);
          block(config, s, j, kKernels[c / 3], kExpands[c % 3], &hb, &wb, acc);
          if (c == 8) hs = hb, ws = wb;
        }
      }
      h = hs, w = ws;
    }
    head(config, h, w, fixed);
  }
  return t;
}

// The table of the last config seen by this thread: the fused predictor calls batch once per
// sub-block of a few hundred genomes, and tabulating costs ~0.2 ms.
const Table& cached_table(const int64_t* config) {
  thread_local std::vector<int64_t> key;
  thread_local Table table;
  if (key.empty() || !std::equal(key.begin(), key.end(), config)) {
    table = tabulate(config);
    key.assign(config, config + kConfigSize);
  }
  return table;
}

void batch(const int32_t* genomes, int64_t n, const int64_t* config, int64_t* totals,
           int64_t* slots) {
  const Table& t = cached_table(config);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* g = genomes + i * kGenes;
    const int64_t r = g[kGenes - 1];
    int64_t acc[F];
    for (int f = 0; f < F; ++f) acc[f] = t.fixed[r * F + f];
    const int64_t* base = &t.blocks[r * kSlots * 9 * F];
    for (int s = 0; s < kStages; ++s) {
      const int depth = g[2 * kSlots + s] + 2;
      for (int j = 0; j < depth; ++j) {
        const int slot = s * kMaxDepth + j;
        const int64_t* b = base + (slot * 9 + g[slot] * 3 + g[kSlots + slot]) * F;
        for (int f = 0; f < F; ++f) acc[f] += b[f];
        if (slots) {
          int64_t* out = slots + (i * kSlots + slot) * F;
          for (int f = 0; f < F; ++f) out[f] = b[f];
        }
      }
    }
    for (int f = 0; f < F; ++f) totals[i * F + f] = acc[f];
  }
}

}  // namespace

extern const SpaceKernel kOfaMbv3{"ofa-mbv3", kConfigSize, &choices, &n_slots, &walk, &batch};

}  // namespace esm
