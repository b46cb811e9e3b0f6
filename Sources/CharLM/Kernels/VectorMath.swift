// Single-precision math on 16 lanes at a time, for the element-wise kernels (GateKernels.swift, the loss, Adam):
// loads and stores at any alignment, the loop over a row's groups of 16, and our own e^x, sigmoid and tanh, written
// with plain lane-wise operations so the compiler maps them to the widest vector instructions of this CPU (the
// package builds CharLM with -target-cpu native).
//
// Everything here is `@inline(always)`: a kernel is fast only when all of it is inlined into its loop, and Swift
// 6.3 treats `@inline(__always)` as a hint it may decline (it left sigmoid and tanh, and the standard library's
// generic pointwiseMin, as calls inside the LSTM kernel's loop: 1.8 times slower), where `@inline(always)` is a
// guarantee for direct calls.
//
// e^x uses a Cephes-style range reduction and degree-6 polynomial: relative error below 3e-7 (GateKernelTests
// checks it, and sigmoid and tanh, against Foundation's double-precision functions over [-100, 100]). erf, for the
// transformer's GELU, is Eigen's single-precision rational approximation (same tests). `masked` serves the row
// reductions of LayerNorm and the softmax. At the end, e^x in double precision on 8 lanes, for the sampler.

/// 16 single-precision lanes: one AVX-512 register, or two AVX ones.
typealias Lanes = SIMD16<Float>

@inline(always) func load(_ pointer: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self)
}

@inline(always) func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
}

/// Runs `body(offset, lanes)` over 0..<n (n >= 0) in groups of 16 lanes: `lanes` is 16 for each full group, then
/// the size of a last partial group, if any. The element-wise kernels' one loop.
///
/// Pass a local function marked `@inline(always)` (its calls here are then inlined, which a closure's need not be:
/// one was not). In the loop `lanes` is then the constant 16, so `load(_:lanes:)` and `store(_:_:lanes:)` there are
/// whole-vector loads and stores, and only the last group takes the partial ones: a single loop whose loads check a
/// count at run time was 3.5 times slower (measured on the LSTM's kernel: 360 against 102 microseconds per step on
/// the default shape), as the compiler then no longer keeps the lanes in registers.
@inline(always) func forEachGroup(_ n: Int, _ body: (_ offset: Int, _ lanes: Int) -> Void) {
    let width = Lanes.scalarCount
    let tail = n & (width - 1)  // 0 ..< 16, visibly so: the last group's loads and stores are only the partial ones
    let fullEnd = n - tail
    var offset = 0
    while offset < fullEnd {
        body(offset, width)
        offset += width
    }
    if tail > 0 { body(fullEnd, tail) }
}

/// `lanes` (<= 16) floats: a whole vector when `lanes` is 16, else the low lanes of a zeroed one.
@inline(always) func load(_ pointer: UnsafePointer<Float>, lanes: Int) -> Lanes {
    lanes == Lanes.scalarCount ? load(pointer) : loadPartial(pointer, lanes)
}

/// Writes the low `lanes` (<= 16) lanes: all of them as one vector when `lanes` is 16.
@inline(always) func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>, lanes: Int) {
    if lanes == Lanes.scalarCount { store(value, pointer) } else { storePartial(value, pointer, lanes) }
}

/// Indices 0..<n in groups of 16, for loops written out by hand (the loss, Adam): the starts of the full groups, and
/// where a last partial group starts and its size (0 if none). Keep the partial group as a separate branch after the
/// loop, as `forEachGroup` does.
@inline(always) func groups(_ H: Int) -> (full: StrideTo<Int>, tailStart: Int, tail: Int) {
    let width = Lanes.scalarCount
    let fullEnd = H / width * width
    return (stride(from: 0, to: fullEnd, by: width), fullEnd, H - fullEnd)
}

/// Reads `count` (< 16) floats into the low lanes of a zeroed vector.
@inline(always) func loadPartial(_ pointer: UnsafePointer<Float>, _ count: Int) -> Lanes {
    var lanes = Lanes()
    for lane in 0..<count { lanes[lane] = pointer[lane] }
    return lanes
}

/// Writes the low `count` (< 16) lanes.
@inline(always) func storePartial(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
    for lane in 0..<count { pointer[lane] = value[lane] }
}

/// e^x lane-wise. Inputs are clamped to [-87, 88], so results stay finite and normal (e^-87 ~ 1.6e-38).
@inline(always) func exponential(_ x: Lanes) -> Lanes {
    // min(x, 88) then max(., -87), lane for lane exactly as the standard library's pointwiseMin and pointwiseMax
    // (Float.minimum(x, 88) is x <= 88 ? x : 88, so NaN becomes 88), but from comparisons and selections that are
    // always inlined (pointwiseMin is a generic function the optimiser may leave as a call).
    let (upper, lower) = (Lanes(repeating: 88), Lanes(repeating: -87))
    let belowUpper = upper.replacing(with: x, where: x .<= upper)
    let clamped = lower.replacing(with: belowUpper, where: belowUpper .> lower)
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
@inline(always) func sigmoid(_ x: Lanes) -> Lanes { 1 / (1 + exponential(-x)) }

/// tanh(x) lane-wise, as sign(x) (1 - e^-2|x|) / (1 + e^-2|x|): absolute error about 1e-7 everywhere.
@inline(always) func tanh(_ x: Lanes) -> Lanes {
    let bits = unsafeBitCast(x, to: SIMD16<UInt32>.self)
    let sign = bits & 0x8000_0000
    let magnitude = unsafeBitCast(bits & 0x7FFF_FFFF, to: Lanes.self)
    let e = exponential(-2 * magnitude)
    let result = (1 - e) / (1 + e)
    return unsafeBitCast(unsafeBitCast(result, to: SIMD16<UInt32>.self) | sign, to: Lanes.self)
}


/// erf(x) lane-wise, as Eigen's single-precision rational approximation (also XLA's): x P(x^2) / Q(x^2) with x
/// clamped to [-4, 4], where erf is already +-1 to single precision, and the result to [-1, 1] (near the ends the
/// ratio passes 1 by an ulp). Absolute error below 3e-7.
@inline(always) func errorFunction(_ x: Lanes) -> Lanes {
    let (upper, lower) = (Lanes(repeating: 4), Lanes(repeating: -4))
    let belowUpper = upper.replacing(with: x, where: x .<= upper)
    let clamped = lower.replacing(with: belowUpper, where: belowUpper .> lower)
    let square = clamped * clamped
    // the numerator's odd coefficients, highest first
    var p = Lanes(repeating: -2.726_142_258_013_06e-10)
    p = p * square + 2.770_681_424_959_02e-08
    p = p * square - 2.101_024_020_825_08e-06
    p = p * square - 5.692_506_394_623_46e-05
    p = p * square - 7.349_906_303_268_55e-04
    p = p * square - 2.954_599_808_540_25e-03
    p = p * square - 1.609_603_332_624_15e-02
    // the denominator's even coefficients, highest first
    var q = Lanes(repeating: -1.456_607_184_649_96e-05)
    q = q * square - 2.133_740_552_789_05e-04
    q = q * square - 1.682_826_974_382_03e-03
    q = q * square - 7.373_329_167_204_68e-03
    q = q * square - 1.426_473_905_141_89e-02
    let ratio = clamped * p / q
    let (one, minusOne) = (Lanes(repeating: 1), Lanes(repeating: -1))
    let belowOne = one.replacing(with: ratio, where: ratio .<= one)
    return minusOne.replacing(with: belowOne, where: belowOne .>= minusOne)
}

/// The lanes at or past `lanes` (< 16: a last partial group) set to `filler`, so a row's partial group adds nothing
/// to a sum (filler 0) or a maximum (filler -infinity); all 16 kept when `lanes` is 16.
@inline(always) func masked(_ value: Lanes, lanes: Int, filler: Float = 0) -> Lanes {
    if lanes == Lanes.scalarCount { return value }
    let laneIndex = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    return value.replacing(with: filler, where: laneIndex .>= Int32(lanes))
}

// MARK: - Double precision, for the sampler

/// 8 double-precision lanes: one AVX-512 register, or two AVX ones.
typealias DoubleLanes = SIMD8<Double>

/// e^x lane-wise in double precision, for the sampler's softmax (Sampler.swift), in place of the C library's `exp`
/// once per character of the vocabulary. x = n ln2 + r with n an integer and |r| <= ln2/2 (ln2 split in two parts,
/// Cody and Waite's, so n ln2's first part is exact), e^r by its Taylor series to r^13/13! (truncation below 5e-18
/// relative), times 2^n built from its bit pattern: within 2 units in the last place of the C library's (the tests
/// check it). Plain multiplications and additions only, so the bits are the same on every CPU. Results below e^-708
/// (about 3e-308, where 2^n would leave the normal range) are 0, and x is limited to 709 above; NaN stays NaN.
@inline(always) func exponential(_ x: DoubleLanes) -> DoubleLanes {
    let clamped = x.replacing(with: 709, where: x .> DoubleLanes(repeating: 709))
    let underflows = clamped .< DoubleLanes(repeating: -708)
    let bounded = clamped.replacing(with: 0, where: underflows)
    // Adding 1.5 * 2^52 rounds x / ln2 to the nearest integer and leaves it in the low bits of the pattern.
    let magic: Double = 6_755_399_441_055_744
    let shifted = bounded * 1.442_695_040_888_963_4 + magic
    let n = shifted - magic
    let r = bounded - n * 0.693_147_180_369_123_816_49 - n * 1.908_214_929_270_587_700_02e-10
    // e^r = 1 + r + r^2/2! + ... + r^13/13!, by Horner's rule from the highest term
    var p = DoubleLanes(repeating: 1 / 6_227_020_800)  // 1/13!
    p = p * r + 1 / 479_001_600
    p = p * r + 1 / 39_916_800
    p = p * r + 1 / 3_628_800
    p = p * r + 1 / 362_880
    p = p * r + 1 / 40_320
    p = p * r + 1 / 5_040
    p = p * r + 1 / 720
    p = p * r + 1 / 120
    p = p * r + 1 / 24
    p = p * r + 1 / 6
    p = p * r + 1 / 2
    p = p * r + 1
    p = p * r + 1
    let integer = unsafeBitCast(shifted, to: SIMD8<Int64>.self) &- Int64(bitPattern: magic.bitPattern)
    let twoToN = unsafeBitCast((integer &+ 1023) &<< 52, to: DoubleLanes.self)
    return (p * twoToN).replacing(with: 0, where: underflows)
}
