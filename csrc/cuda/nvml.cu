// NVML queries through dlopen, so the module loads where the driver has no NVML.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <map>
#include <string>

#include "esm/cuda_timer.hpp"

namespace esm::cuda {

namespace {

using nvmlReturn_t = int;
using nvmlDevice_t = void*;
constexpr int kClockSm = 1, kClockMem = 2, kTempGpu = 0;

struct Nvml {
  void* lib = nullptr;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*by_pci)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*clock)(nvmlDevice_t, int, unsigned*) = nullptr;
  nvmlReturn_t (*max_clock)(nvmlDevice_t, int, unsigned*) = nullptr;
  nvmlReturn_t (*power_limit)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned*) = nullptr;
  nvmlReturn_t (*reasons)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*driver)(char*, unsigned) = nullptr;
  std::string error;

  Nvml() {
    lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = "libnvidia-ml.so.1 not found";
      return;
    }
    init = reinterpret_cast<decltype(init)>(dlsym(lib, "nvmlInit_v2"));
    by_pci = reinterpret_cast<decltype(by_pci)>(dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2"));
    clock = reinterpret_cast<decltype(clock)>(dlsym(lib, "nvmlDeviceGetClockInfo"));
    max_clock = reinterpret_cast<decltype(max_clock)>(dlsym(lib, "nvmlDeviceGetMaxClockInfo"));
    power_limit = reinterpret_cast<decltype(power_limit)>(
        dlsym(lib, "nvmlDeviceGetPowerManagementLimit"));
    temperature = reinterpret_cast<decltype(temperature)>(dlsym(lib, "nvmlDeviceGetTemperature"));
    reasons = reinterpret_cast<decltype(reasons)>(
        dlsym(lib, "nvmlDeviceGetCurrentClocksEventReasons"));
    if (!reasons) {
      reasons = reinterpret_cast<decltype(reasons)>(
          dlsym(lib, "nvmlDeviceGetCurrentClocksThrottleReasons"));
    }
    driver = reinterpret_cast<decltype(driver)>(dlsym(lib, "nvmlSystemGetDriverVersion"));
    if (!init || !by_pci || init() != 0) error = "nvmlInit failed";
  }
};

Nvml& nvml() {
  static Nvml instance;
  return instance;
}

}  // namespace

std::map<std::string, std::string> nvml_info(int device) {
  std::map<std::string, std::string> out;
  Nvml& n = nvml();
  if (!n.error.empty()) {
    out["error"] = n.error;
    return out;
  }
  char bus[64] = {0};
  if (cudaDeviceGetPCIBusId(bus, sizeof(bus), device) != cudaSuccess) {
    cudaGetLastError();
    out["error"] = "no PCI bus id for device " + std::to_string(device);
    return out;
  }
  nvmlDevice_t dev = nullptr;
  if (n.by_pci(bus, &dev) != 0) {
    out["error"] = std::string("NVML has no device at ") + bus;
    return out;
  }
  out["pci_bus_id"] = bus;
  unsigned v = 0;
  if (n.clock && n.clock(dev, kClockSm, &v) == 0) out["sm_clock_mhz"] = std::to_string(v);
  if (n.clock && n.clock(dev, kClockMem, &v) == 0) out["mem_clock_mhz"] = std::to_string(v);
  if (n.max_clock && n.max_clock(dev, kClockSm, &v) == 0) {
    out["max_sm_clock_mhz"] = std::to_string(v);
  }
  if (n.max_clock && n.max_clock(dev, kClockMem, &v) == 0) {
    out["max_mem_clock_mhz"] = std::to_string(v);
  }
  if (n.power_limit && n.power_limit(dev, &v) == 0) {
    out["power_limit_w"] = std::to_string(v / 1000.0);
  }
  if (n.temperature && n.temperature(dev, kTempGpu, &v) == 0) {
    out["temperature_c"] = std::to_string(v);
  }
  unsigned long long r = 0;
  if (n.reasons && n.reasons(dev, &r) == 0) out["clock_event_reasons"] = std::to_string(r);
  char drv[96] = {0};
  if (n.driver && n.driver(drv, sizeof(drv)) == 0) out["driver"] = drv;
  return out;
}

}  // namespace esm::cuda
