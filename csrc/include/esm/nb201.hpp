// NAS-Bench-201 (Dong & Yang, ICLR 2020): the cell space of NAS-Bench-201 in its TinyNetwork
// macro skeleton (AutoDL-Projects, models/cell_infers/tiny_network.py).
//
// Skeleton: stem Conv3x3(3->C)+BN; 3 stages of N cells at C, 2C, 4C channels separated by
// ResNet basic reduction blocks (ReLUConvBN 3x3 stride 2, ReLUConvBN 3x3, shortcut
// AvgPool2d(2,2)+Conv1x1 without BN); lastact BN+ReLU; global average pooling; Linear.
// Cell: 4 nodes, 6 edges in text-form order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2; every edge
// one of none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 (that index order).
// Like NAS-Bench-201's InferCell, every edge is computed, also edges whose result cannot reach
// the cell output; only convolutions carry MACs and parameters.
//
// Genome: 6 op indices, one per edge, shared by all 3N cells. Slot e collects edge e over all
// cells. Config: [C, N, n_classes, resolution].
//
// The walk is host and device code (esm/hd.hpp): csrc/cpu/space_nb201.cpp and the CUDA pipeline
// compile the same source.
#pragma once

#include <cstdint>

#include "esm/costs.hpp"
#include "esm/hd.hpp"

namespace esm::nb201 {

constexpr int kEdges = 6, kOps = 5, kStages = 3;
constexpr int32_t kConv1x1 = 2, kConv3x3 = 3;
constexpr int64_t kConfigSize = 4;

// Walks one validated genome (6 op indices) with config [C, N, n_classes, resolution].
ESM_HD inline void walk(const int32_t* g, const int64_t* config, Accumulator& acc) {
  const int64_t n_cells = config[1];
  int64_t c = config[0], h = config[3], w = config[3];

  acc.set_slot(-1);
  acc.conv(3, c, 3, 1, 1, 1, h, w, false, &h, &w);
  acc.batchnorm(c);
  for (int s = 0; s < kStages; ++s) {
    if (s > 0) {
      acc.set_slot(-1);
      const int64_t out = 2 * c;
      int64_t oh, ow;
      acc.conv(c, out, 3, 2, 1, 1, h, w, false, &oh, &ow);  // conv_a (ReLUConvBN)
      acc.batchnorm(out);
      acc.conv(out, out, 3, 1, 1, 1, oh, ow, false, nullptr, nullptr);  // conv_b
      acc.batchnorm(out);
      acc.conv(c, out, 1, 1, 0, 1, conv_out(h, 2, 2, 0), conv_out(w, 2, 2, 0), false, nullptr,
               nullptr);  // shortcut: AvgPool2d(2, 2) then Conv1x1
      c = out;
      h = oh;
      w = ow;
    }
    for (int64_t cell = 0; cell < n_cells; ++cell) {
      for (int e = 0; e < kEdges; ++e) {
        const int32_t op = g[e];
        if (op != kConv1x1 && op != kConv3x3) continue;  // none, skip, avg_pool: no MACs
        const int64_t k = op == kConv3x3 ? 3 : 1;
        acc.set_slot(e);
        acc.conv(c, c, k, 1, k / 2, 1, h, w, false, nullptr, nullptr);
        acc.batchnorm(c);
      }
    }
  }
  acc.set_slot(-1);
  acc.batchnorm(c);  // lastact
  acc.linear(c, config[2], true);
}

}  // namespace esm::nb201
