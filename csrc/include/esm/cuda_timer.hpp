// CUDA event timer (plain C++ interface; implemented in csrc/cuda/timer.cu).
//
// Samples are timed with events from a pool created once, recorded on the caller's stream
// (a raw cudaStream_t passed as an integer, e.g. torch.cuda.current_stream().cuda_stream).
// A batch of samples is enqueued without any synchronisation; one synchronisation at the end
// of the batch reads every elapsed time. Before each sample (outside the timed region) an
// optional L2 flush overwrites a scratch buffer of twice the device's L2 size, and a small
// probe kernel measures the SM clock (clock64 cycles over %globaltimer nanoseconds), so
// throttled samples can be flagged.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace esm::cuda {

class EventTimer {
 public:
  // `pool`: samples per synchronisation (events are created up front: 2 per sample).
  EventTimer(int device, int pool, bool l2_flush);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  // Enqueue up to pool() samples on `stream`: each sample is [flush] probe start
  // `enqueue()` x inner stop. `enqueue` must put its work on `stream`. No synchronisation.
  void enqueue_batch(const std::function<void()>& enqueue, uintptr_t stream, int64_t inner,
                     int64_t n);
  // Wait for the batch (one event synchronisation) and write per-sample milliseconds (the
  // whole block of `inner` calls) and SM clock in MHz. Call without holding the GIL.
  void collect_batch(int64_t n, double* ms_out, double* sm_mhz_out);

  // Capture `inner` calls of `enqueue` on `stream` (must not be the legacy default stream)
  // into a CUDA graph; returns an opaque handle for launch_graph / destroy_graph.
  uintptr_t capture_graph(const std::function<void()>& enqueue, uintptr_t stream,
                          int64_t inner);
  void launch_graph(uintptr_t graph, uintptr_t stream);
  static void destroy_graph(uintptr_t graph);

  int pool() const { return pool_; }
  int device() const { return device_; }
  int64_t l2_bytes() const { return l2_bytes_; }
  int64_t flush_bytes() const { return flush_bytes_; }
  double max_clock_mhz() const { return max_clock_mhz_; }

 private:
  void release();
  int device_;
  int pool_;
  bool l2_flush_;
  int64_t l2_bytes_ = 0;
  int64_t flush_bytes_ = 0;
  double max_clock_mhz_ = 0.0;
  void* starts_ = nullptr;  // cudaEvent_t[pool]
  void* stops_ = nullptr;   // cudaEvent_t[pool]
  void* flush_buf_ = nullptr;
  unsigned long long* probe_dev_ = nullptr;  // [pool, 2]: cycles, nanoseconds
  int64_t enqueued_ = 0;
  int64_t flushes_ = 0;
};

// NVML information of a device (loaded with dlopen; empty map with "error" when unavailable):
// driver version, SM/memory clocks (current, max), power limit (W), temperature (C),
// current clock-event (throttle) reasons bit mask.
std::map<std::string, std::string> nvml_info(int device);

}  // namespace esm::cuda
