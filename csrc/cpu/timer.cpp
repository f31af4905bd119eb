#include "esm/timer.hpp"

#include <algorithm>
#include <limits>

namespace esm::timer {

double clock_tick() {
  return static_cast<double>(Clock::period::num) / static_cast<double>(Clock::period::den);
}

double clock_resolution(int64_t reads) {
  double best = std::numeric_limits<double>::infinity();
  auto prev = Clock::now();
  for (int64_t i = 0; i < reads; ++i) {
    auto t = Clock::now();
    while (t == prev) t = Clock::now();
    best = std::min(best, std::chrono::duration<double>(t - prev).count());
    prev = t;
  }
  return best;
}

void busy_wait(double seconds) {
  if (!(seconds >= 0.0)) throw std::invalid_argument("busy_wait: seconds must be >= 0");
  if (seconds > 60.0) throw std::invalid_argument("busy_wait: at most 60 seconds");
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
  }
}

void empty_blocks(int64_t samples, double* out) {
  time_blocks([] {}, 1, samples, out);
}

void time_busy_wait(double seconds, int64_t inner, int64_t samples, double* out) {
  time_blocks([seconds] { busy_wait(seconds); }, inner, samples, out);
}

}  // namespace esm::timer
