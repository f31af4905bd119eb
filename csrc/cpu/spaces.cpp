// The registry of search-space cost kernels: the generic walker of spec-defined spaces
// (space_spec.cpp) and NAS-Bench-201's cell kernel (space_nb201.cpp).
#include "esm/costs.hpp"

namespace esm {

extern const SpaceKernel kNb201;
extern const SpaceKernel kSpec;

const std::vector<const SpaceKernel*>& registered_spaces() {
  static const std::vector<const SpaceKernel*> spaces{&kSpec, &kNb201};
  return spaces;
}

}  // namespace esm
