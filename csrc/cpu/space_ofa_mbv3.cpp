// Once-for-All MobileNetV3 (Cai et al., ICLR 2020), the OFAMobileNetV3 sub-network.
//
// Genome (choice indices): ks[20] in {3,5,7}, e[20] in {3,4,6}, d[5] in {2,3,4}, r index into
// the resolution list. Config: [stem, first_block, w1..w5, final_expand, last_channel,
// n_classes, n_resolutions, res_min, res_step].
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

std::vector<int32_t> choices(const int64_t* config) {
  std::vector<int32_t> c(kGenes, 3);
  c[kGenes - 1] = static_cast<int32_t>(config[10]);
  return c;
}

int n_slots(const int64_t*) { return kSlots; }

void walk(const int32_t* g, const int64_t* config, Accumulator& acc) {
  const int32_t* ks = g;
  const int32_t* ex = g + kSlots;
  const int32_t* depth = g + 2 * kSlots;
  const int64_t r = config[11] + g[kGenes - 1] * config[12];
  const int64_t stem = config[0], first = config[1];
  int64_t h = r, w = r;

  acc.set_slot(-1);
  acc.conv(3, stem, 3, 2, 1, 1, h, w, false, &h, &w);
  acc.batchnorm(stem);
  acc.conv(stem, stem, 3, 1, 1, stem, h, w, false, &h, &w);  // depthwise, expand ratio 1
  acc.batchnorm(stem);
  acc.conv(stem, first, 1, 1, 0, 1, h, w, false, &h, &w);
  acc.batchnorm(first);

  int64_t in = first;
  for (int s = 0; s < kStages; ++s) {
    const int64_t out = config[2 + s];
    for (int j = 0; j < depth[s] + 2; ++j) {
      const int slot = s * kMaxDepth + j;
      const int64_t k = kKernels[ks[slot]];
      const int64_t mid = make_divisible(static_cast<double>(in * kExpands[ex[slot]]), 8);
      const int64_t stride = j == 0 ? kStrides[s] : 1;
      acc.set_slot(slot);
      acc.conv(in, mid, 1, 1, 0, 1, h, w, false, &h, &w);
      acc.batchnorm(mid);
      acc.conv(mid, mid, k, stride, k / 2, mid, h, w, false, &h, &w);
      acc.batchnorm(mid);
      if (kSe[s]) {
        const int64_t red = make_divisible(static_cast<double>(mid / 4), 8);
        acc.conv(mid, red, 1, 1, 0, 1, 1, 1, true, nullptr, nullptr);
        acc.conv(red, mid, 1, 1, 0, 1, 1, 1, true, nullptr, nullptr);
      }
      acc.conv(mid, out, 1, 1, 0, 1, h, w, false, &h, &w);
      acc.batchnorm(out);
      in = out;
    }
  }

  acc.set_slot(-1);
  const int64_t final_expand = config[7], last = config[8];
  acc.conv(in, final_expand, 1, 1, 0, 1, h, w, false, &h, &w);
  acc.batchnorm(final_expand);
  acc.conv(final_expand, last, 1, 1, 0, 1, 1, 1, false, nullptr, nullptr);  // after pooling
  acc.linear(last, config[9], true);
}

}  // namespace

extern const SpaceKernel kOfaMbv3{"ofa-mbv3", 13, &choices, &n_slots, &walk};

}  // namespace esm
