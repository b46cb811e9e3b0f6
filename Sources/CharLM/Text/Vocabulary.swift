// Characters <-> indices. A vocabulary is the sorted set of Unicode scalars in a normalised corpus (exactly Python's
// `sorted(set(text))`), plus the normalisation that produced it, so a prompt is mapped the same way as the corpus.

/// The model's alphabet: scalar <-> index, and how raw text is normalised into it.
public struct Vocabulary: Equatable, Sendable {
    /// The characters in index order.
    public let scalars: [Unicode.Scalar]
    /// The normalisation applied to text before it is encoded.
    public let normalization: NormalizationOptions
    /// Index of each scalar value.
    private let indexByValue: [UInt32: Int]
    /// Index of each ASCII value (-1 when absent): the common case of `index(of:)` without hashing.
    private let indexByASCII: [Int32]

    /// V, the number of characters.
    public var count: Int { scalars.count }

    /// A vocabulary with the given characters in the given order (which need not be sorted, so a file made
    /// elsewhere keeps its order). Throws on duplicates, an empty list, or more than 65,535 entries.
    public init(scalars: [Unicode.Scalar], normalization: NormalizationOptions) throws {
        guard !scalars.isEmpty else {
            throw CharLMError.badVocabulary(problem: "is empty: it needs at least one character")
        }
        guard scalars.count <= 65_535 else {
            throw CharLMError.badVocabulary(problem: "has \(scalars.count) entries; charlm supports at most 65,535")
        }
        var indexByValue: [UInt32: Int] = [:]
        for (index, scalar) in scalars.enumerated() {
            if indexByValue.updateValue(index, forKey: scalar.value) != nil {
                throw CharLMError.badVocabulary(problem: "lists the character \(visible(scalar)) twice")
            }
        }
        self.scalars = scalars
        self.normalization = normalization
        self.indexByValue = indexByValue
        var indexByASCII = [Int32](repeating: -1, count: 128)
        for (index, scalar) in scalars.enumerated() where scalar.value < 128 { indexByASCII[Int(scalar.value)] = Int32(index) }
        self.indexByASCII = indexByASCII
    }

    public static func == (a: Vocabulary, b: Vocabulary) -> Bool {
        a.scalars == b.scalars && a.normalization == b.normalization
    }

    /// The index of `scalar`, or nil when it is not in the vocabulary. The one mapping from characters to indices:
    /// corpora (Corpus.swift) and prompts (`encode`) both go through it.
    @inline(__always)
    public func index(of scalar: Unicode.Scalar) -> Int? {
        if scalar.value < 128 {
            let index = indexByASCII[Int(scalar.value)]
            return index >= 0 ? Int(index) : nil
        }
        return indexByValue[scalar.value]
    }

    /// The result of encoding a user's text.
    public struct Encoding: Equatable, Sendable {
        /// Token indices of the characters that are in the vocabulary.
        public var tokens: [Int]
        /// Characters that were still unknown after normalisation and were left out, each once, in first-seen order.
        public var dropped: [Unicode.Scalar]
        /// How many characters were left out in all.
        public var droppedCount: Int
        /// What normalisation changed.
        public var report: NormalizationReport
    }

    /// Normalises `text` as the corpus was, then maps it to indices, leaving out (and reporting) unknown characters.
    public func encode(_ text: String) -> Encoding {
        var normalizer = TextNormalizer(options: normalization)
        let (normalized, report) = normalizer.normalize(text)
        var tokens: [Int] = []
        tokens.reserveCapacity(normalized.count)
        var dropped: [Unicode.Scalar] = []
        var droppedCount = 0
        for scalar in normalized {
            if let index = index(of: scalar) {
                tokens.append(index)
            } else {
                droppedCount += 1
                if !dropped.contains(scalar) { dropped.append(scalar) }
            }
        }
        return Encoding(tokens: tokens, dropped: dropped, droppedCount: droppedCount, report: report)
    }

    /// The text of `tokens`; throws if an index is out of range.
    public func decode(_ tokens: [Int]) throws -> String {
        var text = String.UnicodeScalarView()
        for token in tokens {
            guard token >= 0 && token < scalars.count else {
                throw CharLMError.tokenOutOfRange(token: token, vocabularySize: scalars.count)
            }
            text.append(scalars[token])
        }
        return String(text)
    }

    /// The character of one token as a string (the caller guarantees the index is valid).
    public func character(_ token: Int) -> String { String(Character(scalars[token])) }
}

/// A character spelled so a reader can see it: `'\n'`, `' '`, `'a'`, `"'"`, `'U+200B'`.
public func visible(_ scalar: Unicode.Scalar) -> String {
    switch scalar {
    case "\n": return "'\\n'"
    case "\t": return "'\\t'"
    case "\r": return "'\\r'"
    case "'": return "\"'\""  // an apostrophe between apostrophes reads as three
    default:
        if actsOnATerminal(scalar) {
            return "'U+" + String(scalar.value, radix: 16, uppercase: true) + "'"
        }
        return "'" + String(Character(scalar)) + "'"
    }
}

/// Whether `scalar` would act on a terminal rather than show as a character: C0 controls (newline and tab too),
/// DEL, C1 controls, format characters (zero-width, direction marks) and the line and paragraph separators. Every
/// place that shows a file's or a user's characters spells these out.
public func actsOnATerminal(_ scalar: Unicode.Scalar) -> Bool {
    if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) { return true }
    switch scalar.properties.generalCategory {
    case .format, .lineSeparator, .paragraphSeparator: return true
    default: return false
    }
}
