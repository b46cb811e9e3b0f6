// What the CPU charlm runs on can do, for choices the Swift code cannot make at compile time, and the one cache hint
// Swift cannot express (a prefetch). Only Sources/CharLM/Kernels/Compute.swift (`CPUClass`) and PackedProduct.swift
// (the prefetch) import this module.
#ifndef CHARLM_CPU_FEATURES_H
#define CHARLM_CPU_FEATURES_H

/// The width in bits of the widest vectors the CPU has: 512 (AVX-512F), 256 (AVX2), 128 (SSE or NEON).
int charlm_cpu_vector_bits(void);

/// Asks the CPU to bring the cache line holding `address` towards its L1 cache, to be written: a hint, no load (a
/// load that misses holds up everything after it once the reorder buffer fills; a prefetch retires at once).
static inline void charlm_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#endif
