// Text -> normalised Unicode scalars. Decodes UTF-8 (invalid sequences become U+FFFD and are counted), unifies line
// breaks, removes invisible format characters, and optionally folds to ASCII and lowercases. It leaves out
// vocabulary building and token storage (Vocabulary.swift, Corpus.swift).

import Foundation

/// Which optional normalisations apply. Line breaks and invisible format characters are always normalised.
public struct NormalizationOptions: Equatable, Hashable, Sendable {
    /// Lowercase every character (Unicode's lowercase mapping).
    public var lowercase: Bool
    /// Fold accents and typographic punctuation to ASCII where a fold exists, then drop what is still non-ASCII.
    public var ascii: Bool

    /// The defaults are the `lowercase` and `ascii` settings' (SettingDeclarations.swift).
    public init(lowercase: Bool = Setting.lowercase.defaultFlag, ascii: Bool = Setting.ascii.defaultFlag) {
        self.lowercase = lowercase
        self.ascii = ascii
    }

    /// The raw-text setting: no lowercasing, no ASCII folding (what the PyTorch reference model was trained on).
    public static let raw = NormalizationOptions(lowercase: false, ascii: false)
}

/// What normalisation did to a text: counts for the load report.
public struct NormalizationReport: Equatable, Sendable {
    /// Bytes read.
    public var bytes = 0
    /// Invalid UTF-8 sequences, each replaced by U+FFFD.
    public var replacedSequences = 0
    /// `\r\n` pairs and lone `\r` turned into `\n`.
    public var lineBreaksConverted = 0
    /// Zero-width and other invisible format characters (Unicode category Cf) removed.
    public var invisibleRemoved = 0
    /// Non-ASCII characters replaced by an ASCII fold (`é` -> `e`, `’` -> `'`).
    public var foldedToASCII = 0
    /// Non-ASCII characters dropped because no fold exists (ASCII mode only).
    public var droppedNonASCII = 0
    /// Characters changed by lowercasing.
    public var lowercased = 0
    /// Characters in the normalised text.
    public var characters = 0

    public init() {}
}

/// Decodes and normalises text, scalar by scalar, without building an intermediate string.
public struct TextNormalizer {
    public let options: NormalizationOptions
    /// Memoised results for non-ASCII scalars: what each becomes, and how it was changed.
    private var cache: [UInt32: (output: [Unicode.Scalar], change: Change)] = [:]

    private enum Change { case kept, removedInvisible, folded, dropped, lowercased }

    public init(options: NormalizationOptions) { self.options = options }

    /// Decodes `bytes` as UTF-8 and calls `emit` with each normalised scalar, in order; returns what changed.
    public mutating func normalize(
        utf8 bytes: UnsafeBufferPointer<UInt8>, emit: (Unicode.Scalar) -> Void
    ) -> NormalizationReport {
        var report = NormalizationReport()
        report.bytes = bytes.count
        var afterCarriageReturn = false
        var position = 0
        let asciiMap = Self.asciiMap(options: options)
        while position < bytes.count {
            let byte = bytes[position]
            // Fast path: ASCII.
            if byte < 0x80 {
                position += 1
                if byte == 0x0D {  // \r -> \n; a following \n is then skipped
                    report.lineBreaksConverted += 1
                    afterCarriageReturn = true
                    emit("\n")
                    report.characters += 1
                    continue
                }
                if byte == 0x0A && afterCarriageReturn {
                    afterCarriageReturn = false
                    continue
                }
                afterCarriageReturn = false
                let value = asciiMap[Int(byte)]
                if value != byte { report.lowercased += 1 }
                emit(Unicode.Scalar(value))
                report.characters += 1
                continue
            }
            afterCarriageReturn = false
            let (decoded, length) = decodeMultibyte(bytes, at: position)
            position += length
            let scalar: Unicode.Scalar
            if let decoded {
                scalar = decoded
            } else {
                report.replacedSequences += 1
                scalar = "\u{FFFD}"
            }
            let (output, change) = transform(scalar)
            switch change {
            case .kept: break
            case .removedInvisible: report.invisibleRemoved += 1
            case .folded: report.foldedToASCII += 1
            case .dropped: report.droppedNonASCII += 1
            case .lowercased: report.lowercased += 1
            }
            for character in output { emit(character) }
            report.characters += output.count
        }
        return report
    }

    /// What each ASCII byte other than \r becomes: itself, or its lowercase letter when `lowercase` is on. The one
    /// statement of what normalisation does to ASCII, shared with the corpus's plain-ASCII fast path.
    public static func asciiMap(options: NormalizationOptions) -> [UInt8] {
        var map = [UInt8](0...127)
        if options.lowercase { for byte in UInt8(ascii: "A")...UInt8(ascii: "Z") { map[Int(byte)] = byte + 0x20 } }
        return map
    }

    /// Normalises a Swift string (a user's prompt), returning the scalars and the report.
    public mutating func normalize(_ text: String) -> (scalars: [Unicode.Scalar], report: NormalizationReport) {
        var scalars: [Unicode.Scalar] = []
        var utf8 = Array(text.utf8)
        let report = utf8.withUnsafeMutableBufferPointer { buffer in
            normalize(utf8: UnsafeBufferPointer(buffer)) { scalars.append($0) }
        }
        return (scalars, report)
    }

    /// What a non-ASCII scalar becomes under the options, memoised.
    private mutating func transform(_ scalar: Unicode.Scalar) -> (output: [Unicode.Scalar], change: Change) {
        if let known = cache[scalar.value] { return known }
        let result: (output: [Unicode.Scalar], change: Change)
        if scalar.properties.generalCategory == .format {
            result = ([], .removedInvisible)
        } else if options.ascii {
            let folded = Self.asciiFold(scalar)
            if folded.isEmpty {
                result = ([], .dropped)
            } else {
                result = (options.lowercase ? folded.map(Self.lowercaseASCII) : folded, .folded)
            }
        } else if options.lowercase {
            let lowered = Array(scalar.properties.lowercaseMapping.unicodeScalars)
            result = (lowered, lowered == [scalar] ? .kept : .lowercased)
        } else {
            result = ([scalar], .kept)
        }
        cache[scalar.value] = result
        return result
    }

    private static func lowercaseASCII(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        (scalar.value >= 0x41 && scalar.value <= 0x5A) ? Unicode.Scalar(UInt8(scalar.value + 0x20)) : scalar
    }

    /// Typographic punctuation and letters that compatibility decomposition does not reduce to ASCII.
    private static let asciiFolds: [UInt32: String] = [
        0x2018: "'", 0x2019: "'", 0x201A: "'", 0x201B: "'", 0x2032: "'", 0x2039: "'", 0x203A: "'",
        0x201C: "\"", 0x201D: "\"", 0x201E: "\"", 0x201F: "\"", 0x2033: "\"", 0x00AB: "\"", 0x00BB: "\"",
        0x2010: "-", 0x2011: "-", 0x2012: "-", 0x2013: "-", 0x2014: "-", 0x2015: "-", 0x2212: "-",
        0x2022: "*", 0x00B7: ".", 0x2028: "\n", 0x2029: "\n",
        0x00C6: "AE", 0x00E6: "ae", 0x0152: "OE", 0x0153: "oe", 0x00D8: "O", 0x00F8: "o", 0x00DF: "ss",
        0x0141: "L", 0x0142: "l", 0x0110: "D", 0x0111: "d", 0x00D0: "D", 0x00F0: "d", 0x00DE: "TH", 0x00FE: "th",
        0x0131: "i",
    ]

    /// The ASCII fold of a non-ASCII scalar: the table above, else its compatibility decomposition (NFKD) with
    /// combining marks and any other non-ASCII left out. Empty when nothing ASCII remains.
    private static func asciiFold(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        if let folded = asciiFolds[scalar.value] { return Array(folded.unicodeScalars) }
        let decomposed = String(Character(scalar)).decomposedStringWithCompatibilityMapping
        return decomposed.unicodeScalars.filter { $0.isASCII }
    }
}

/// Decodes one UTF-8 sequence starting with a non-ASCII byte at `position`. Returns the scalar (nil when the bytes
/// are invalid) and how many bytes were consumed: for invalid input, the maximal valid prefix, at least one byte
/// (the Unicode "maximal subpart" rule, as Python's and Swift's decoders apply it).
@inline(__always)
private func decodeMultibyte(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int) -> (Unicode.Scalar?, Int) {
    let lead = bytes[position]
    let length: Int
    var value: UInt32
    var secondLow: UInt8 = 0x80
    var secondHigh: UInt8 = 0xBF
    switch lead {
    case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F)
    case 0xE0: length = 3; value = UInt32(lead & 0x0F); secondLow = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: length = 3; value = UInt32(lead & 0x0F)
    case 0xED: length = 3; value = UInt32(lead & 0x0F); secondHigh = 0x9F
    case 0xF0: length = 4; value = UInt32(lead & 0x07); secondLow = 0x90
    case 0xF1...0xF3: length = 4; value = UInt32(lead & 0x07)
    case 0xF4: length = 4; value = UInt32(lead & 0x07); secondHigh = 0x8F
    default: return (nil, 1)
    }
    for offset in 1..<length {
        let index = position + offset
        guard index < bytes.count else { return (nil, offset) }
        let byte = bytes[index]
        let low = offset == 1 ? secondLow : 0x80
        let high = offset == 1 ? secondHigh : 0xBF
        guard byte >= low && byte <= high else { return (nil, offset) }
        value = (value << 6) | UInt32(byte & 0x3F)
    }
    return (Unicode.Scalar(value), length)
}
