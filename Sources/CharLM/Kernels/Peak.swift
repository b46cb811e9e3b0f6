// The ceiling under every product's GFLOP/s: how many fused multiply-adds the cores retire when nothing else is asked
// of them (`charlm-bench fma-peak`). A product kernel cannot beat it, since each multiply-add of C = A B is one lane of
// one such instruction; docs/benchmarks.md compares the kernels' rates, and training's, against it.
//
// Each thread runs twelve independent chains of multiply-adds on registers (a chain waits for its own previous
// result; twelve of them keep both of a core's multiply-add units busy through the latency of four cycles), with
// nothing loaded or stored in the loop. Compiled for this CPU (the package builds CharLM with -target-cpu native), each
// `addingProduct` below is one vfmadd instruction on 4 lanes (128 bits), 8 (256) or 16 (512).

import Foundation

/// GFLOP/s (2 per multiply-add) of `threads` threads each running `iterations` rounds of 12 independent multiply-adds
/// on vectors of `vectorBits` (128: 4 lanes, 256: 8, 512: 16).
public func fusedMultiplyAddRate(threads: Int, vectorBits: Int, iterations: Int) -> Double {
    let lanes = vectorBits <= 128 ? 4 : vectorBits == 256 ? 8 : 16
    let done = DispatchGroup()
    let start = Date()
    for _ in 0..<threads {
        done.enter()
        Thread {
            // The result is used (it is never zero, so nothing is printed): the optimiser cannot drop the loop.
            let sum = switch lanes {
            case 4: multiplyAddChains(SIMD4<Float>.self, iterations)
            case 8: multiplyAddChains(SIMD8<Float>.self, iterations)
            default: multiplyAddChains(SIMD16<Float>.self, iterations)
            }
            if sum == 0 { print("") }
            done.leave()
        }.start()
    }
    done.wait()
    let seconds = Date().timeIntervalSince(start)
    return 2 * Double(threads) * Double(iterations) * Double(12 * lanes) / seconds / 1e9
}

/// `iterations` rounds of a = a * 0.9999 + 0.0001 on twelve vectors: the values stay near 1, never overflow or go
/// subnormal.
@inline(never) private func multiplyAddChains<V: SIMD>(_ type: V.Type, _ iterations: Int) -> Float
where V.Scalar == Float {
    let (b, c) = (V(repeating: 0.9999), V(repeating: 0.0001))
    var (a0, a1, a2, a3) = (V(repeating: 0.1), V(repeating: 0.2), V(repeating: 0.3), V(repeating: 0.4))
    var (a4, a5, a6, a7) = (V(repeating: 0.5), V(repeating: 0.6), V(repeating: 0.7), V(repeating: 0.8))
    var (a8, a9, a10, a11) = (V(repeating: 0.9), V(repeating: 1.0), V(repeating: 1.1), V(repeating: 1.2))
    for _ in 0..<iterations {
        a0 = c.addingProduct(a0, b); a1 = c.addingProduct(a1, b); a2 = c.addingProduct(a2, b)
        a3 = c.addingProduct(a3, b); a4 = c.addingProduct(a4, b); a5 = c.addingProduct(a5, b)
        a6 = c.addingProduct(a6, b); a7 = c.addingProduct(a7, b); a8 = c.addingProduct(a8, b)
        a9 = c.addingProduct(a9, b); a10 = c.addingProduct(a10, b); a11 = c.addingProduct(a11, b)
    }
    let total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
    return total.sum()
}
