// The registry of search-space cost kernels.
#include "esm/costs.hpp"

namespace esm {

extern const SpaceKernel kOfaMbv3;
extern const SpaceKernel kNb201;

const std::vector<const SpaceKernel*>& registered_spaces() {
  static const std::vector<const SpaceKernel*> spaces{&kOfaMbv3, &kNb201};
  return spaces;
}

}  // namespace esm
