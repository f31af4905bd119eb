// CPU timing primitives (plain C++, no pybind11): a monotonic clock, block timing of a
// callable with raw per-sample times, a busy-wait of known duration and the timer's own
// per-sample overhead.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>

namespace esm::timer {

using Clock = std::chrono::steady_clock;
static_assert(Clock::is_steady, "esm's timer needs a monotonic clock");

// Seconds on the monotonic clock (arbitrary epoch).
inline double now() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// CPU time consumed by the calling thread, in seconds (CLOCK_THREAD_CPUTIME_ID): unaffected
// by time the thread spends descheduled, so it suits single-threaded work on a shared machine.
inline double thread_cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Nominal tick of the clock in seconds (the period of steady_clock's representation).
double clock_tick();

// Smallest observed positive difference between two consecutive clock reads, in seconds
// (the effective resolution), over `reads` reads.
double clock_resolution(int64_t reads);

// Spins on the monotonic clock until `seconds` have passed (no sleeping, no yielding), so the
// call lasts `seconds` of wall time plus the cost of one clock read.
void busy_wait(double seconds);

// Times `samples` blocks of `inner` calls of `fn()`: out[i] is the wall time of block i in
// seconds divided by `inner` (seconds per call). Only the calls are inside the timed region;
// the clock is read once before and once after each block. Exceptions from fn propagate.
template <class Fn>
void time_blocks(Fn&& fn, int64_t inner, int64_t samples, double* out) {
  if (inner < 1) throw std::invalid_argument("inner iterations must be >= 1");
  if (samples < 0) throw std::invalid_argument("samples must be >= 0");
  for (int64_t s = 0; s < samples; ++s) {
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < inner; ++i) fn();
    const auto t1 = Clock::now();
    out[s] = std::chrono::duration<double>(t1 - t0).count() / static_cast<double>(inner);
  }
}

// Same as time_blocks, on the calling thread's CPU-time clock.
template <class Fn>
void time_blocks_thread_cpu(Fn&& fn, int64_t inner, int64_t samples, double* out) {
  if (inner < 1) throw std::invalid_argument("inner iterations must be >= 1");
  if (samples < 0) throw std::invalid_argument("samples must be >= 0");
  for (int64_t s = 0; s < samples; ++s) {
    const double t0 = thread_cpu_now();
    for (int64_t i = 0; i < inner; ++i) fn();
    out[s] = (thread_cpu_now() - t0) / static_cast<double>(inner);
  }
}

// Per-sample overhead of the timer itself: `samples` blocks around an empty body (two clock
// reads back to back). out[i] in seconds.
void empty_blocks(int64_t samples, double* out);

// Times `samples` blocks of `inner` busy-waits of `seconds` each, entirely in C++ (reference
// for the accuracy of the timing loop without the Python call overhead).
void time_busy_wait(double seconds, int64_t inner, int64_t samples, double* out);

}  // namespace esm::timer
