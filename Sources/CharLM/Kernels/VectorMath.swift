// Single-precision math on 16 lanes at a time, for the element-wise kernels (GateKernels.swift, the loss): loads and
// stores at any alignment, and our own e^x, sigmoid and tanh, written with plain lane-wise operations so the compiler
// maps them to the widest vector instructions of this CPU (the package builds CharLM with -target-cpu native).
//
// e^x uses a Cephes-style range reduction and degree-6 polynomial: relative error below 3e-7 (GateKernelTests
// checks it, and sigmoid and tanh, against Foundation's double-precision functions over [-100, 100]).

/// 16 single-precision lanes: one AVX-512 register, or two AVX ones.
typealias Lanes = SIMD16<Float>

@inline(__always) func load(_ pointer: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self)
}

@inline(__always) func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
}

/// Indices 0..<n in groups of 16: the starts of the full groups, and where a last partial group starts and its size
/// (0 if none), which callers run through the same vector code on zero-padded copies. Callers keep the partial group
/// as a separate branch after the loop: one loop with a load that checks its count made the gate kernel 3.5 times
/// slower (measured: 102 against 360 microseconds per step on the default shape), as the compiler then no longer
/// keeps the lanes in registers.
@inline(__always) func groups(_ H: Int) -> (full: StrideTo<Int>, tailStart: Int, tail: Int) {
    let width = Lanes.scalarCount
    let fullEnd = H / width * width
    return (stride(from: 0, to: fullEnd, by: width), fullEnd, H - fullEnd)
}

/// Reads `count` (< 16) floats into the low lanes of a zeroed vector.
@inline(__always) func loadPartial(_ pointer: UnsafePointer<Float>, _ count: Int) -> Lanes {
    var lanes = Lanes()
    for lane in 0..<count { lanes[lane] = pointer[lane] }
    return lanes
}

/// Writes the low `count` (< 16) lanes.
@inline(__always) func storePartial(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
    for lane in 0..<count { pointer[lane] = value[lane] }
}

/// e^x lane-wise. Inputs are clamped to [-87, 88], so results stay finite and normal (e^-87 ~ 1.6e-38).
@inline(__always) func exponential(_ x: Lanes) -> Lanes {
    let clamped = pointwiseMax(pointwiseMin(x, Lanes(repeating: 88)), Lanes(repeating: -87))
    // x = n ln2 + r with n an integer and |r| <= ln2/2. Adding 1.5 * 2^23 rounds x/ln2 to the nearest integer and
    // leaves that integer in the low bits of the float's pattern.
    let magic: Float = 12_582_912
    let shifted = clamped * Float(1.442_695_04) + magic
    let n = shifted - magic
    let r = clamped - n * Float(0.693_359_375) + n * Float(2.121_944_4e-4)
    // e^r on |r| <= ln2/2 (Cephes expf).
    var p = Lanes(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 0.166_666_655
    p = p * r + 0.500_000_01
    let expR = p * (r * r) + r + 1
    // 2^n built from its bit pattern: (n + 127) << 23.
    let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- Int32(bitPattern: magic.bitPattern)
    let twoToN = unsafeBitCast((integer &+ 127) &<< 23, to: Lanes.self)
    return expR * twoToN
}

/// 1 / (1 + e^-x) lane-wise.
@inline(__always) func sigmoid(_ x: Lanes) -> Lanes { 1 / (1 + exponential(-x)) }

/// tanh(x) lane-wise, as sign(x) (1 - e^-2|x|) / (1 + e^-2|x|): absolute error about 1e-7 everywhere.
@inline(__always) func tanh(_ x: Lanes) -> Lanes {
    let bits = unsafeBitCast(x, to: SIMD16<UInt32>.self)
    let sign = bits & 0x8000_0000
    let magnitude = unsafeBitCast(bits & 0x7FFF_FFFF, to: Lanes.self)
    let e = exponential(-2 * magnitude)
    let result = (1 - e) / (1 + e)
    return unsafeBitCast(unsafeBitCast(result, to: SIMD16<UInt32>.self) | sign, to: Lanes.self)
}

