// Channel arithmetic shared by the space kernels.
#pragma once

#include <algorithm>
#include <cstdint>

#include "esm/hd.hpp"

namespace esm {

// Once-for-All / MobileNet make_divisible: round to the nearest multiple of `divisor`, at least
// `divisor`, never more than 10% below v.
ESM_HD inline int64_t make_divisible(double v, int64_t divisor) {
  const int64_t r = static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor;
  int64_t nv = r > divisor ? r : divisor;
  if (static_cast<double>(nv) < 0.9 * v) nv += divisor;
  return nv;
}

}  // namespace esm
