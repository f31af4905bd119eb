// Once-for-All ResNet50 (Cai et al., ICLR 2020), the sub-networks of OFA's OFAResNets
// (depth_list {0,1,2}, expand_ratio_list {0.2,0.25,0.35}, width_mult_list {0.65,0.8,1.0}).
//
// Genome (choice indices, 30 genes): d[5] (d0: input-stem residual block {0 = skipped,
// 2 = kept}; d1..d4: extra blocks per stage {0,1,2} on top of BASE_DEPTH_LIST [2,2,4,2]),
// e[18] per-block expand ratio, w[6] width-multiplier index (input-stem mid, input-stem out,
// 4 stages), r index into the resolution list.
//
// Config (integer plan computed by python/esm/spaces/ofa_resnet50.py, all channel counts
// already rounded with OFA's make_divisible):
//   [0..2]   stem mid channels per w choice        [3..5]  stem out channels per w choice
//   [6..17]  stage widths [stage][w]               [18..53] bottleneck mid [stage][w][e]
//   [54] n_classes  [55] n_resolutions  [56] res_min  [57] res_step
//
// Slots: 0 = the input stem's residual 3x3 conv block, 1..18 = the 18 bottleneck blocks.
#include "esm/costs.hpp"

namespace esm {
namespace {

constexpr int kStages = 4;
constexpr int kBaseDepth[kStages] = {2, 2, 4, 2};
constexpr int kMaxExtra = 2;
constexpr int kBlocks = 2 + 2 + 4 + 2 + kStages * kMaxExtra;  // 18
constexpr int kSlots = 1 + kBlocks;
constexpr int kWidthGenes = kStages + 2;
constexpr int kDepthGenes = kStages + 1;
constexpr int kGenes = kDepthGenes + kBlocks + kWidthGenes + 1;
constexpr int kConfigSize = 58;

enum ConfigIndex {
  kStemMid = 0,
  kStemOut = 3,
  kStageWidth = 6,
  kStageMid = 18,
  kClasses = 54,
  kNRes = 55,
  kResMin = 56,
  kResStep = 57,
};

std::vector<int32_t> choices(const int64_t* config) {
  std::vector<int32_t> c(kGenes, 3);
  c[0] = 2;  // input-stem depth: 0 (skip the residual block) or 2 (keep it)
  c[kGenes - 1] = static_cast<int32_t>(config[kNRes]);
  return c;
}

int n_slots(const int64_t*) { return kSlots; }

void walk(const int32_t* g, const int64_t* config, Accumulator& acc) {
  const int32_t* depth = g;
  const int32_t* ex = g + kDepthGenes;
  const int32_t* wm = g + kDepthGenes + kBlocks;
  const int64_t r = config[kResMin] + g[kGenes - 1] * config[kResStep];
  int64_t h = r, w = r;

  const int64_t mid = config[kStemMid + wm[0]];
  const int64_t stem = config[kStemOut + wm[1]];
  acc.set_slot(-1);
  acc.conv(3, mid, 3, 2, 1, 1, h, w, false, &h, &w);
  acc.batchnorm(mid);
  if (depth[0] != 0) {  // ResidualBlock(3x3 conv, identity)
    acc.set_slot(0);
    acc.conv(mid, mid, 3, 1, 1, 1, h, w, false, &h, &w);
    acc.batchnorm(mid);
    acc.set_slot(-1);
  }
  acc.conv(mid, stem, 3, 1, 1, 1, h, w, false, &h, &w);
  acc.batchnorm(stem);
  h = conv_out(h, 3, 2, 1);  // max pooling 3x3, stride 2, padding 1
  w = conv_out(w, 3, 2, 1);

  int64_t in = stem;
  int block = 0;
  for (int s = 0; s < kStages; ++s) {
    const int64_t out = config[kStageWidth + s * 3 + wm[2 + s]];
    const int active = kBaseDepth[s] + depth[1 + s];
    for (int j = 0; j < kBaseDepth[s] + kMaxExtra; ++j, ++block) {
      if (j >= active) continue;
      const int64_t stride = (j == 0 && s > 0) ? 2 : 1;
      const int64_t m = config[kStageMid + (s * 3 + wm[2 + s]) * 3 + ex[block]];
      const int64_t h_in = h, w_in = w;
      acc.set_slot(1 + block);
      acc.conv(in, m, 1, 1, 0, 1, h, w, false, &h, &w);
      acc.batchnorm(m);
      acc.conv(m, m, 3, stride, 1, 1, h, w, false, &h, &w);
      acc.batchnorm(m);
      acc.conv(m, out, 1, 1, 0, 1, h, w, false, &h, &w);
      acc.batchnorm(out);
      if (stride != 1 || in != out) {
        // 'avgpool_conv' shortcut: AvgPool2d(stride, stride, ceil_mode=True), 1x1 conv, BN.
        const int64_t ph = (h_in + stride - 1) / stride, pw = (w_in + stride - 1) / stride;
        acc.conv(in, out, 1, 1, 0, 1, ph, pw, false, nullptr, nullptr);
        acc.batchnorm(out);
      }
      in = out;
    }
  }

  acc.set_slot(-1);
  acc.linear(in, config[kClasses], true);  // after global average pooling
}

}  // namespace

extern const SpaceKernel kOfaResnet50{"ofa-resnet50", kConfigSize, &choices, &n_slots, &walk};

}  // namespace esm
