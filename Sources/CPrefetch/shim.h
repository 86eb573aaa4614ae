#ifndef MISS_CPREFETCH_SHIM_H
#define MISS_CPREFETCH_SHIM_H
// A software prefetch of the cache line at p into every level (no fault on any address).
static inline __attribute__((always_inline)) void miss_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
#endif
