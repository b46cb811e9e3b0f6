// Fixed-size float32 storage that kernels address through raw pointers. Allocated once per shape and reused, so hot
// loops neither allocate nor pay for copy-on-write or exclusivity checks.

/// A zero-initialised, fixed-size block of `Float`s owned by this object.
public final class FloatBuffer {
    /// Number of elements.
    public let count: Int
    /// The first element; valid for `count` elements while this object lives.
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { pointer.deallocate() }

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

    /// The index of the first element that is NaN or infinite, or nil.
    public func firstNonFinite() -> Int? {
        for index in 0..<count where !pointer[index].isFinite { return index }
        return nil
    }

    /// The elements as an array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
