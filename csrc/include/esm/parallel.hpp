// Minimal static-chunk parallel loop over [0, n) on std::thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace esm {

// Number of worker threads to use: `requested` if positive, else the hardware concurrency.
inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  // Read once: hardware_concurrency() reads /sys on every call (tens of microseconds).
  static const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls fn(begin, end) on contiguous ranges covering [0, n), one per thread.
// The first exception thrown by a worker is rethrown in the caller.
template <class Fn>
void parallel_for(int64_t n, int threads, int64_t min_per_thread, Fn&& fn) {
  if (n <= 0) return;
  int64_t t = std::max<int64_t>(
      1, std::min<int64_t>(resolve_threads(threads), (n + min_per_thread - 1) / min_per_thread));
  if (t == 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(t));
  int64_t chunk = (n + t - 1) / t;
  for (int64_t i = 0; i < t; ++i) {
    int64_t b = i * chunk, e = std::min(n, b + chunk);
    if (b >= e) break;
    pool.emplace_back([&, b, e] {
      try {
        fn(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace esm
