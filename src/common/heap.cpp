#include "common/heap.hpp"

#include <malloc.h>

namespace ebus {

void tune_heap() noexcept {
  constexpr int keep_free_at_top = 1 << 20;
  constexpr int map_from = 512 << 10;
  // Fixed values: setting either turns off glibc's own adjustment of both.
  (void)::mallopt(M_TRIM_THRESHOLD, keep_free_at_top);
  (void)::mallopt(M_MMAP_THRESHOLD, map_from);
}

}  // namespace ebus
