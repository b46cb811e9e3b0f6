// What the CPU charlm runs on can do, for choices the Swift code cannot make at compile time. Only
// Sources/CharLM/PackedProduct.swift and Compute.swift import this module.
#ifndef CHARLM_CPU_FEATURES_H
#define CHARLM_CPU_FEATURES_H

/// 1 if the CPU has 512-bit vector registers (AVX-512F), else 0. charlm builds with -target-cpu native, so the
/// answer is also whether the compiled code uses them.
int charlm_cpu_has_avx512(void);

/// The width in bits of the widest vectors the CPU has: 512 (AVX-512F), 256 (AVX2), 128 (SSE or NEON).
int charlm_cpu_vector_bits(void);

#endif
