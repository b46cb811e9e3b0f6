// The safetensors file format, read and written exactly as its specification says, and read as if the file were
// hostile: every number in the header is checked before it is used.
//
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   a JSON object, UTF-8, starting with '{', optionally padded with spaces (we pad so data starts at a
//             multiple of 8): {"__metadata__": {string: string, ...},
//                              "NAME": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [BEGIN, END]}, ...}
//   the rest  the byte buffer; offsets are relative to its start, END is one past the last byte, the tensors cover
//             it exactly (no gaps, no overlaps), little-endian, row-major.
//
// Tensor values are returned as Float32 (F32 as is; F16, BF16 and F64 converted). Model-level meaning (names,
// shapes, metadata keys) is in Checkpoint.swift.

import Foundation

/// One tensor: its name, shape and values.
public struct NamedTensor: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// The contents of a safetensors file.
public struct SafeTensorsFile: Equatable, Sendable {
    /// `__metadata__`: free-form string -> string.
    public var metadata: [String: String]
    /// The tensors, in the order of their data.
    public var tensors: [NamedTensor]

    public init(metadata: [String: String], tensors: [NamedTensor]) {
        self.metadata = metadata
        self.tensors = tensors
    }

    /// Whether `bytes` start as a safetensors file does (a plausible header length, then '{'): how `load` tells a
    /// checkpoint from a text corpus, whatever the file is called. A file cut short, or with an impossible header
    /// length, still looks like one, so `parse` says what is wrong with it.
    public static func looksLikeSafeTensors(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 9 else { return false }
        var length: UInt64 = 0
        for index in 0..<8 { length |= UInt64(bytes[index]) << (8 * UInt64(index)) }
        // Text cannot start this way: its first eight bytes would need NULs (text has none) to make any length
        // at all a safetensors file could claim. So a '{' at byte 8 after any length is a checkpoint, damaged or not.
        return bytes[8] == UInt8(ascii: "{") && bytes[0..<8].contains(0)
    }

    /// The largest header accepted (the reference implementation's limit).
    public static let maximumHeaderLength = 100_000_000

    /// The most tensors a file may hold. charlm's largest model (16 transformer layers with biases) has about 200,
    /// three times that with its optimizer state; a file with a million tiny tensors is an attack, not a model.
    public static let maximumTensorCount = 10_000

    /// The most dimensions a tensor may have (charlm's have one or two; PyTorch's files rarely more than four).
    public static let maximumDimensions = 8

    /// Bytes per element of every dtype the format defines; nil for names it does not define.
    static func elementSize(of dtype: String) -> Int? {
        switch dtype {
        case "BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2": return 1
        case "U16", "I16", "F16", "BF16": return 2
        case "U32", "I32", "F32": return 4
        case "U64", "I64", "F64": return 8
        default: return nil
        }
    }

    // MARK: Writing

    /// The file's bytes: header (padded with spaces so the data starts 8-byte aligned), then F32 data.
    public func serialized() -> [UInt8] {
        var header = "{"
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { jsonString($0) + ":" + jsonString(metadata[$0]!) }
            entries.append(jsonString("__metadata__") + ":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for tensor in tensors {
            let end = offset + tensor.values.count * 4
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(jsonString(tensor.name) + ":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: headerBytes)
        for tensor in tensors {
            for value in tensor.values {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        return bytes
    }

    // MARK: Reading

    /// Parses and checks a whole file. Errors name `path` and the first problem found; `cancellation` stops it
    /// (a hostile header takes seconds to read).
    public static func parse(_ bytes: [UInt8], path: String, cancellation: Cancellation = .never) throws -> SafeTensorsFile {
        func bad(_ problem: String) -> CharLMError { .badCheckpoint(path: path, problem: problem) }
        guard bytes.count >= 8 else {
            throw bad("it is \(bytes.count) bytes long; a safetensors file starts with an 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for index in 0..<8 { headerLength |= UInt64(bytes[index]) << (8 * UInt64(index)) }
        guard headerLength <= UInt64(maximumHeaderLength) else {
            throw bad("its header length \(headerLength) is above the \(maximumHeaderLength)-byte limit")
        }
        let headerEnd = 8 + Int(headerLength)
        guard headerEnd <= bytes.count else {
            throw bad("its header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        guard headerLength >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw bad("its header does not start with '{'")
        }
        // A pathological header (millions of tiny arrays or keys) takes some 40 times its size while parsed.
        try MemoryBudget.check(40 * Double(headerLength), for: "parsing a \(headerLength)-byte checkpoint header",
                               hint: "this file's header is unusually large")
        // Every tensor takes one JSON object: a header opening far more is refused before it is parsed (seconds).
        // Braces inside strings (a name may hold them) are not objects.
        var objects = 0
        var inString = false, escaped = false
        for byte in bytes[8..<headerEnd] {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "{") {
                objects += 1
            }
        }
        guard objects <= 2 * maximumTensorCount else {
            throw bad("its header opens \(objects) JSON objects; a charlm checkpoint describes at most "
                      + "\(maximumTensorCount) tensors, one object each")
        }
        guard let headerText = String(validating: bytes[8..<headerEnd], as: UTF8.self) else {
            throw bad("its header is not valid UTF-8")
        }
        let header: JSONValue
        do {
            header = try JSONValue.parse(headerText, cancellation: cancellation)
        } catch let error as JSONError {
            throw bad("its header is not valid JSON (\(error))")
        }
        guard case .object(let pairs) = header else { throw bad("its header is not a JSON object") }
        let tensorCount = pairs.count { $0.key != "__metadata__" }
        guard tensorCount <= maximumTensorCount else {
            throw bad("its header describes \(tensorCount) tensors; a charlm checkpoint has at most \(maximumTensorCount)")
        }

        var metadata: [String: String] = [:]
        struct Entry { let name: String, dtype: String, shape: [Int], begin: Int, end: Int }
        var entries: [Entry] = []
        for (name, value) in pairs {
            if name == "__metadata__" {
                guard case .object(let items) = value else { throw bad("`__metadata__` is not a JSON object") }
                for (key, item) in items {
                    guard let text = item.string else { throw bad("metadata `\(key)` is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard case .object = value else { throw bad("tensor '\(name)' is not described by a JSON object") }
            guard let dtype = value["dtype"]?.string else { throw bad("tensor '\(name)' has no dtype") }
            guard let size = elementSize(of: dtype) else { throw bad("tensor '\(name)' has unknown dtype '\(dtype)'") }
            guard let shape = nonNegativeIntegers(value["shape"]) else {
                throw bad("tensor '\(name)' has no valid shape (a list of non-negative integers)")
            }
            guard shape.count <= maximumDimensions else {
                throw bad("tensor '\(name)' has \(shape.count) dimensions; charlm reads at most \(maximumDimensions)")
            }
            guard let offsets = nonNegativeIntegers(value["data_offsets"]), offsets.count == 2, offsets[0] <= offsets[1] else {
                throw bad("tensor '\(name)' has no valid data_offsets (two non-negative integers, begin <= end)")
            }
            var count = 1
            for dimension in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw bad("tensor '\(name)' has a shape too large to exist") }
                count = product
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, byteCount == offsets[1] - offsets[0] else {
                throw bad("tensor '\(name)' has shape \(shape) of \(dtype) but \(offsets[1] - offsets[0]) bytes of data")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1]))
        }
        // The tensors must tile the byte buffer exactly.
        let dataLength = bytes.count - headerEnd
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        for entry in entries {
            if entry.begin > covered { throw bad("the data has a gap before tensor '\(entry.name)' (bytes \(covered)..<\(entry.begin))") }
            if entry.begin < covered { throw bad("tensor '\(entry.name)' overlaps the tensor before it") }
            covered = entry.end
        }
        guard covered == dataLength else {
            if covered > dataLength {
                throw bad("the tensors need \(covered) bytes of data but the file has \(dataLength) (truncated?)")
            }
            throw bad("the file has \(dataLength - covered) bytes after the last tensor")
        }
        var tensors: [NamedTensor] = []
        for entry in entries {
            let values = try bytes.withUnsafeBufferPointer { buffer -> [Float] in
                let start = headerEnd + entry.begin
                let count = (entry.end - entry.begin) / elementSize(of: entry.dtype)!
                switch entry.dtype {
                case "F32": return (0..<count).map { Float(bitPattern: littleEndian32(buffer, start + 4 * $0)) }
                case "F16": return (0..<count).map { floatFromHalf(littleEndian16(buffer, start + 2 * $0)) }
                case "BF16": return (0..<count).map { Float(bitPattern: UInt32(littleEndian16(buffer, start + 2 * $0)) << 16) }
                case "F64":
                    return (0..<count).map {
                        Float(Double(bitPattern: UInt64(littleEndian32(buffer, start + 8 * $0))
                                     | UInt64(littleEndian32(buffer, start + 8 * $0 + 4)) << 32))
                    }
                default:
                    throw bad("tensor '\(entry.name)' has dtype \(entry.dtype); charlm reads F32, F16, BF16 and F64")
                }
            }
            tensors.append(NamedTensor(name: entry.name, shape: entry.shape, values: values))
        }
        return SafeTensorsFile(metadata: metadata, tensors: tensors)
    }
}

@inline(__always)
private func littleEndian16(_ buffer: UnsafeBufferPointer<UInt8>, _ index: Int) -> UInt16 {
    UInt16(buffer[index]) | UInt16(buffer[index + 1]) << 8
}

@inline(__always)
private func littleEndian32(_ buffer: UnsafeBufferPointer<UInt8>, _ index: Int) -> UInt32 {
    UInt32(buffer[index]) | UInt32(buffer[index + 1]) << 8 | UInt32(buffer[index + 2]) << 16 | UInt32(buffer[index + 3]) << 24
}

/// IEEE 754 half precision -> single precision, exactly (subnormals, infinities and NaN included).
func floatFromHalf(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = Int(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x03FF)
    if exponent == 0x1F {  // infinity or NaN
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent == 0 {  // zero or subnormal: mantissa * 2^-24
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

/// A JSON array of non-negative integers (no fractions, no exponents, no booleans), or nil.
private func nonNegativeIntegers(_ value: JSONValue?) -> [Int]? {
    guard let array = value?.array else { return nil }
    var result: [Int] = []
    for item in array {
        guard let integer = item.integer, integer >= 0 else { return nil }
        result.append(integer)
    }
    return result
}
