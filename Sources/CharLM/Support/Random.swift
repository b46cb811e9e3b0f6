// The one source of randomness in CharLM: a small, seedable, serialisable generator. Initialisation, batch order,
// dropout masks and sampling all take one of these explicitly; nothing calls the system generator.

import Foundation

/// xoshiro256** (Blackman and Vigna, 2018), seeded through SplitMix64. Its 256-bit state is plain data, so a
/// checkpoint can store it and a resumed run draws exactly the numbers it would have drawn.
public struct SeededGenerator: RandomNumberGenerator, Equatable, Sendable {
    /// The four 64-bit words of state; never all zero.
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose whole future is determined by `seed`.
    public init(seed: UInt64) {
        var mixer = seed
        func splitMix() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var z = mixer
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// Restores a generator from a saved `state`; returns nil for the all-zero state, which xoshiro cannot leave.
    public init?(state: (UInt64, UInt64, UInt64, UInt64)) {
        if state == (0, 0, 0, 0) { return nil }
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform Float in [low, high).
    public mutating func nextFloat(in low: Float, _ high: Float) -> Float {
        let unit = Float(next() >> 40) * 0x1p-24
        return low + (high - low) * unit
    }

    /// A standard normal sample (Box-Muller; one of the pair is discarded to keep the state simple).
    public mutating func nextStandardNormal() -> Float {
        let u1 = 1.0 - nextUnitDouble()  // (0, 1]: log is finite
        let u2 = nextUnitDouble()
        return Float((-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2))
    }

    /// A uniform integer in 0..<bound (bound > 0), without modulo bias.
    public mutating func nextIndex(below bound: Int) -> Int {
        Int(next(upperBound: UInt64(bound)))
    }

    public static func == (a: SeededGenerator, b: SeededGenerator) -> Bool { a.state == b.state }
}

@inline(__always) private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
