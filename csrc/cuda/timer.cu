#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "esm/cuda_timer.hpp"

namespace esm::cuda {

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                             cudaGetErrorString(err));
  }
}

// Restores the calling thread's current device on scope exit (torch relies on it).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&prev_), "cudaGetDevice");
    if (prev_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(prev_); }

 private:
  int prev_ = 0;
};

// Spin for `cycles` SM cycles and report (cycles, globaltimer nanoseconds) of the spin.
__global__ void clock_probe(unsigned long long* out, long long cycles) {
  unsigned long long t0, t1;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  long long c0 = clock64();
  long long c1 = c0;
  while (c1 - c0 < cycles) c1 = clock64();
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1));
  out[0] = static_cast<unsigned long long>(c1 - c0);
  out[1] = t1 - t0;
}

constexpr long long kProbeCycles = 100000;  // ~50-70 us: %globaltimer ticks are <= 1 us

cudaEvent_t* events(void* p) { return static_cast<cudaEvent_t*>(p); }
cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

struct Graph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
};

}  // namespace

EventTimer::EventTimer(int device, int pool, bool l2_flush)
    : device_(device), pool_(pool), l2_flush_(l2_flush) {
  if (pool < 1 || pool > 1 << 16) throw std::invalid_argument("pool must be in [1, 65536]");
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (device < 0 || device >= count) {
    throw std::invalid_argument("no CUDA device " + std::to_string(device));
  }
  DeviceGuard guard(device);
  int l2 = 0, clock_khz = 0;
  check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "L2 size");
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device) == cudaSuccess) {
    max_clock_mhz_ = clock_khz / 1000.0;
  }
  cudaGetLastError();
  l2_bytes_ = l2;
  auto* st = new cudaEvent_t[pool]();
  auto* sp = new cudaEvent_t[pool]();
  starts_ = st;
  stops_ = sp;
  try {
    for (int i = 0; i < pool; ++i) {
      check(cudaEventCreate(&st[i]), "cudaEventCreate");
      check(cudaEventCreate(&sp[i]), "cudaEventCreate");
    }
    check(cudaMalloc(&probe_dev_, sizeof(unsigned long long) * 2 * pool), "cudaMalloc probe");
    if (l2_flush_) {
      flush_bytes_ = 2 * static_cast<int64_t>(l2 > 0 ? l2 : (8 << 20));
      check(cudaMalloc(&flush_buf_, static_cast<size_t>(flush_bytes_)), "cudaMalloc flush");
    }
  } catch (...) {
    release();
    throw;
  }
}

EventTimer::~EventTimer() { release(); }

void EventTimer::release() {
  auto* st = events(starts_);
  auto* sp = events(stops_);
  for (int i = 0; i < pool_; ++i) {
    if (st && st[i]) cudaEventDestroy(st[i]);
    if (sp && sp[i]) cudaEventDestroy(sp[i]);
  }
  delete[] st;
  delete[] sp;
  starts_ = stops_ = nullptr;
  if (probe_dev_) cudaFree(probe_dev_);
  if (flush_buf_) cudaFree(flush_buf_);
  probe_dev_ = nullptr;
  flush_buf_ = nullptr;
}

void EventTimer::enqueue_batch(const std::function<void()>& enqueue, uintptr_t stream,
                               int64_t inner, int64_t n) {
  if (inner < 1) throw std::invalid_argument("inner must be >= 1");
  if (n < 1 || n > pool_) {
    throw std::invalid_argument("a batch holds 1.." + std::to_string(pool_) + " samples");
  }
  DeviceGuard guard(device_);
  cudaStream_t s = as_stream(stream);
  auto* st = events(starts_);
  auto* sp = events(stops_);
  enqueued_ = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (l2_flush_) {
      check(cudaMemsetAsync(flush_buf_, static_cast<int>(flushes_++ & 0xff),
                            static_cast<size_t>(flush_bytes_), s), "L2 flush");
    }
    clock_probe<<<1, 1, 0, s>>>(probe_dev_ + 2 * i, kProbeCycles);
    check(cudaGetLastError(), "clock probe launch");
    check(cudaEventRecord(st[i], s), "cudaEventRecord");
    for (int64_t k = 0; k < inner; ++k) enqueue();
    check(cudaEventRecord(sp[i], s), "cudaEventRecord");
    enqueued_ = i + 1;
  }
}

void EventTimer::collect_batch(int64_t n, double* ms_out, double* sm_mhz_out) {
  if (n != enqueued_) throw std::invalid_argument("collect_batch: n differs from the batch");
  DeviceGuard guard(device_);
  auto* st = events(starts_);
  auto* sp = events(stops_);
  check(cudaEventSynchronize(sp[n - 1]), "cudaEventSynchronize");
  std::vector<unsigned long long> probe(static_cast<size_t>(2 * n));
  check(cudaMemcpy(probe.data(), probe_dev_, sizeof(unsigned long long) * 2 * n,
                   cudaMemcpyDeviceToHost), "probe copy");
  for (int64_t i = 0; i < n; ++i) {
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, st[i], sp[i]), "cudaEventElapsedTime");
    ms_out[i] = ms;
    const double ns = static_cast<double>(probe[2 * i + 1]);
    sm_mhz_out[i] = ns > 0 ? static_cast<double>(probe[2 * i]) / ns * 1e3 : 0.0;
  }
  enqueued_ = 0;
}

uintptr_t EventTimer::capture_graph(const std::function<void()>& enqueue, uintptr_t stream,
                                    int64_t inner) {
  if (stream == 0) throw std::invalid_argument("graph capture needs a non-default stream");
  if (inner < 1) throw std::invalid_argument("inner must be >= 1");
  DeviceGuard guard(device_);
  cudaStream_t s = as_stream(stream);
  auto* g = new Graph();
  check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "begin capture");
  try {
    for (int64_t k = 0; k < inner; ++k) enqueue();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(s, &broken);
    if (broken) cudaGraphDestroy(broken);
    cudaGetLastError();
    delete g;
    throw;
  }
  cudaError_t err = cudaStreamEndCapture(s, &g->graph);
  if (err == cudaSuccess) err = cudaGraphInstantiate(&g->exec, g->graph, 0ULL);
  if (err != cudaSuccess) {
    destroy_graph(reinterpret_cast<uintptr_t>(g));
    check(err, "graph capture");
  }
  return reinterpret_cast<uintptr_t>(g);
}

void EventTimer::launch_graph(uintptr_t graph, uintptr_t stream) {
  auto* g = reinterpret_cast<Graph*>(graph);
  if (g == nullptr || g->exec == nullptr) throw std::invalid_argument("not a captured graph");
  check(cudaGraphLaunch(g->exec, as_stream(stream)), "cudaGraphLaunch");
}

void EventTimer::destroy_graph(uintptr_t graph) {
  auto* g = reinterpret_cast<Graph*>(graph);
  if (g == nullptr) return;
  if (g->exec) cudaGraphExecDestroy(g->exec);
  if (g->graph) cudaGraphDestroy(g->graph);
  delete g;
}

}  // namespace esm::cuda
