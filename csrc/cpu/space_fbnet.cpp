// FBNet space as HW-NAS-Bench defines it (Li et al., ICLR 2021; hw_nas_bench_api/fbnet_models,
// FBNet_Infer), itself the FBNet-v1 macro-architecture (Wu et al., CVPR 2019).
//
// 22 searchable blocks in 7 stages of [1, 4, 4, 4, 4, 4, 1] blocks. Gene i is the block at
// position i, an index into HW-NAS-Bench's PRIMITIVES order:
//   0 k3_e1, 1 k3_e1_g2, 2 k3_e3, 3 k3_e6, 4 k5_e1, 5 k5_e1_g2, 6 k5_e3, 7 k5_e6, 8 skip.
// ConvBlock(k, e, g): 1x1 conv (groups g) + BN + ReLU, [channel shuffle], kxk depthwise conv
// (stride s, padding ceil((k - s) / 2)) + BN + ReLU, 1x1 conv (groups g) + BN; residual add
// when stride 1 and cin == cout. Skip: identity when stride 1 and cin == cout, otherwise a 1x1
// conv (stride s) + BN + ReLU. Stem: 3x3 conv (padding 1) + BN + ReLU; header: 1x1 conv + BN +
// ReLU; global average pooling; linear classifier with bias. All convolutions have no bias.
//
// Config (19 integers): [stem, c0..c6, header, n_classes, resolution, stem_stride, s0..s6].
#include "esm/costs.hpp"

namespace esm {
namespace {

constexpr int kStages = 7, kBlocks = 22, kChoices = 9, kSkip = 8;
constexpr int kLayers[kStages] = {1, 4, 4, 4, 4, 4, 1};
constexpr int64_t kKernel[kSkip] = {3, 3, 3, 3, 5, 5, 5, 5};
constexpr int64_t kExpand[kSkip] = {1, 1, 3, 6, 1, 1, 3, 6};
constexpr int64_t kGroups[kSkip] = {1, 2, 1, 1, 1, 2, 1, 1};

// Config layout.
constexpr int kStem = 0, kChannels = 1, kHeader = 8, kClasses = 9, kResolution = 10,
              kStemStride = 11, kStrides = 12;

std::vector<int32_t> choices(const int64_t*) { return std::vector<int32_t>(kBlocks, kChoices); }

int n_slots(const int64_t*) { return kBlocks; }

void walk(const int32_t* g, const int64_t* config, Accumulator& acc) {
  int64_t h = config[kResolution], w = h;
  const int64_t stem = config[kStem];

  acc.set_slot(-1);
  acc.conv(3, stem, 3, config[kStemStride], 1, 1, h, w, false, &h, &w);
  acc.batchnorm(stem);

  int64_t in = stem;
  int slot = 0;
  for (int s = 0; s < kStages; ++s) {
    const int64_t out = config[kChannels + s];
    for (int j = 0; j < kLayers[s]; ++j, ++slot) {
      const int64_t stride = j == 0 ? config[kStrides + s] : 1;
      const int32_t op = g[slot];
      acc.set_slot(slot);
      if (op == kSkip) {
        if (stride != 1 || in != out) {
          acc.conv(in, out, 1, stride, 0, 1, h, w, false, &h, &w);
          acc.batchnorm(out);
        }
      } else {
        const int64_t k = kKernel[op], groups = kGroups[op], mid = in * kExpand[op];
        acc.conv(in, mid, 1, 1, 0, groups, h, w, false, &h, &w);
        acc.batchnorm(mid);
        acc.conv(mid, mid, k, stride, (k - stride + 1) / 2, mid, h, w, false, &h, &w);
        acc.batchnorm(mid);
        acc.conv(mid, out, 1, 1, 0, groups, h, w, false, &h, &w);
        acc.batchnorm(out);
      }
      in = out;
    }
  }

  acc.set_slot(-1);
  const int64_t header = config[kHeader];
  acc.conv(in, header, 1, 1, 0, 1, h, w, false, &h, &w);
  acc.batchnorm(header);
  acc.linear(header, config[kClasses], true);  // after global average pooling
}

}  // namespace

extern const SpaceKernel kFbnet{"fbnet", 19, &choices, &n_slots, &walk};

}  // namespace esm
