// The registry of search-space cost kernels.
#include "esm/costs.hpp"

namespace esm {

extern const SpaceKernel kOfaMbv3;
extern const SpaceKernel kOfaResnet50;
extern const SpaceKernel kNb201;
extern const SpaceKernel kFbnet;
extern const SpaceKernel kSpec;

const std::vector<const SpaceKernel*>& registered_spaces() {
  static const std::vector<const SpaceKernel*> spaces{&kOfaMbv3, &kOfaResnet50, &kNb201, &kFbnet,
                                                         &kSpec};
  return spaces;
}

}  // namespace esm
