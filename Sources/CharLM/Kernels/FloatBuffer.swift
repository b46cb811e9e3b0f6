// Fixed-size float32 storage that kernels address through raw pointers. Allocated once per shape and reused, so hot
// loops neither allocate nor pay for copy-on-write or exclusivity checks.

/// A zero-initialised, fixed-size block of `Float`s owned by this object, starting on a cache line.
public final class FloatBuffer {
    /// Number of elements.
    public let count: Int
    /// The first element; valid for `count` elements while this object lives.
    public let pointer: UnsafeMutablePointer<Float>

    /// Where every buffer starts: on a 64-byte cache line, so that a 16-float vector at a multiple of 16 floats
    /// never straddles two lines, nor two pages. `malloc` starts large blocks 16 bytes into a page; a (T, B, 4H)
    /// buffer's rows of 4H = 1024 floats are then each one page, shifted by 16 bytes, and the last vector of every
    /// row crossed into the next page. Loads and stores across pages are slow: in training M's forward time loop the
    /// thread owning the last units of every gate block ran its cells 15-50% slower than the other (76-87 ms against
    /// 54-67 ms over 12 steps, measured with timers around the cells) and the other waited for it at every step.
    static let alignment = 64

    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: Self.alignment)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    /// The element at `index`, bounds-checked (for tests and non-hot code).
    public subscript(index: Int) -> Float {
        get {
            precondition(index >= 0 && index < count, "FloatBuffer index \(index) out of range 0..<\(count)")
            return pointer[index]
        }
        set {
            precondition(index >= 0 && index < count, "FloatBuffer index \(index) out of range 0..<\(count)")
            pointer[index] = newValue
        }
    }

    /// Sets every element to zero.
    public func zero() { pointer.update(repeating: 0, count: count) }

    /// Copies every element of `other`, which must have the same count.
    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "FloatBuffer copy needs equal counts")
        pointer.update(from: other.pointer, count: count)
    }

    /// Zeroes every element, `team` sharing the work (the gradients before each backward pass: 11 MB at 6/6/192).
    func zero(team: ThreadTeam) {
        team.runParts(work: count) { member in
            let part = member.share(of: count)
            (pointer + part.lowerBound).update(repeating: 0, count: part.count)
        }
    }

    /// The index of the first element that is NaN or infinite, or nil. Sixteen at a time: x - x is 0 for a finite
    /// x and NaN for an infinite or NaN one.
    public func firstNonFinite() -> Int? {
        let (full, tailStart, _) = groups(count)
        for start in full {
            let lanes = load(pointer + start)
            let zeros = lanes - lanes
            if any(zeros .!= 0) { return (start..<(start + Lanes.scalarCount)).first { !pointer[$0].isFinite } }
        }
        return (tailStart..<count).first { !pointer[$0].isFinite }
    }

    /// The elements as an array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
