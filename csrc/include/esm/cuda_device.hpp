// Device queries of the CUDA module (plain C++ interface; implemented in csrc/cuda).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace esm::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  int64_t total_memory = 0;
  int64_t l2_cache_bytes = 0;
  int multiprocessors = 0;
  int clock_khz = 0;
  int memory_clock_khz = 0;
  int memory_bus_width = 0;
};

// Runtime and driver versions (e.g. 13000); driver is 0 where no driver is installed.
int runtime_version();
int driver_version();

// Usable devices; empty (never an exception) where there is no driver or no GPU. `why` tells
// the reason when the list is empty.
std::vector<DeviceInfo> devices(std::string* why);

}  // namespace esm::cuda
