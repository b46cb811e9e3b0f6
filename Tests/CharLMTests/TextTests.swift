// Normalisation, vocabulary and dataset: what text becomes before the model sees it.

import CharLM
import Foundation
import Testing

private func normalized(_ text: String, lowercase: Bool = true, ascii: Bool = true) -> (String, NormalizationReport) {
    var normalizer = TextNormalizer(options: NormalizationOptions(lowercase: lowercase, ascii: ascii))
    let (scalars, report) = normalizer.normalize(text)
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return (String(view), report)
}

@Test func lowercaseFoldsCapitals() {
    #expect(normalized("Hello WORLD").0 == "hello world")
    #expect(normalized("Hello WORLD", lowercase: false).0 == "Hello WORLD")
    #expect(normalized("ÉCOLE Ärger", ascii: false).0 == "école ärger")
    #expect(normalized("Hello").1.lowercased == 1)
}

@Test func asciiFoldsAccentsAndTypographicPunctuation() {
    let (text, report) = normalized("Café déjà vu — “quoted” it’s … ﬁne Æsir straße", lowercase: false)
    #expect(text == "Cafe deja vu - \"quoted\" it's ... fine AEsir strasse")
    #expect(report.foldedToASCII == 11)  // é é à — “ ” ’ … ﬁ Æ ß
    #expect(report.droppedNonASCII == 0)
    #expect(normalized("Café").0 == "cafe")
    // With ascii off, nothing is folded.
    #expect(normalized("Café “x”", lowercase: false, ascii: false).0 == "Café “x”")
}

@Test func lineBreaksBecomeNewlines() {
    let (text, report) = normalized("a\r\nb\rc\nd\r\r\n", ascii: false)
    #expect(text == "a\nb\nc\nd\n\n")
    #expect(report.lineBreaksConverted == 4)  // \r\n, \r, \r, \r\n
}

@Test(arguments: [true, false])
func invisibleFormatCharactersAreRemoved(ascii: Bool) {
    let (text, report) = normalized("\u{FEFF}a\u{200B}b\u{200D}c\u{00AD}d\u{2060}", ascii: ascii)
    #expect(text == "abcd")
    #expect(report.invisibleRemoved == 5)
}

@Test func emojiAreDroppedInASCIIModeAndKeptOtherwise() throws {
    let (asciiText, asciiReport) = normalized("hi 😀 there 🎉!")
    #expect(asciiText == "hi  there !")
    #expect(asciiReport.droppedNonASCII == 2)
    let (unicodeText, _) = normalized("hi 😀 there 🎉!", ascii: false)
    #expect(unicodeText == "hi 😀 there 🎉!")
    let corpus = try Corpus.make(text: "ab😀", normalization: NormalizationOptions(lowercase: false, ascii: false))
    #expect(corpus.vocabulary.scalars == ["a", "b", "😀"])
}

@Test func invalidUTF8BecomesReplacementCharactersAndIsCounted() throws {
    // 0xFF is never valid; E2 82 is a truncated three-byte sequence (one maximal subpart, one replacement);
    // ED A0 80 is an encoded surrogate (three replacements, as Python and Swift decode it).
    let bytes: [UInt8] = [0x61, 0xFF, 0x62, 0xE2, 0x82, 0x63, 0xED, 0xA0, 0x80, 0x64]
    var normalizer = TextNormalizer(options: .raw)
    var scalars: [Unicode.Scalar] = []
    let report = bytes.withUnsafeBufferPointer { normalizer.normalize(utf8: $0) { scalars.append($0) } }
    #expect(scalars == ["a", "\u{FFFD}", "b", "\u{FFFD}", "c", "\u{FFFD}", "\u{FFFD}", "\u{FFFD}", "d"])
    #expect(report.replacedSequences == 5)
    // ASCII mode then drops the replacement characters.
    var asciiNormalizer = TextNormalizer(options: NormalizationOptions(lowercase: false, ascii: true))
    var asciiScalars: [Unicode.Scalar] = []
    _ = bytes.withUnsafeBufferPointer { asciiNormalizer.normalize(utf8: $0) { asciiScalars.append($0) } }
    #expect(asciiScalars == ["a", "b", "c", "d"])
}

@Test func decoderAgreesWithSwiftsOwnOnRandomBytes() {
    // Independent reference: Swift's UTF-8 decoder, which also replaces each maximal invalid subpart with U+FFFD.
    var generator = SeededGenerator(seed: 99)
    for _ in 0..<200 {
        let bytes: [UInt8] = (0..<64).map { _ in
            // Mostly high bytes, so every kind of sequence and error occurs; no \r and no NUL.
            let value = UInt8(truncatingIfNeeded: generator.next())
            return value == 0x0D || value == 0 ? 0x41 : value
        }
        var normalizer = TextNormalizer(options: .raw)
        var scalars: [Unicode.Scalar] = []
        _ = bytes.withUnsafeBufferPointer { normalizer.normalize(utf8: $0) { scalars.append($0) } }
        let expected = String(decoding: bytes, as: UTF8.self).unicodeScalars.filter {
            $0.properties.generalCategory != .format
        }
        #expect(scalars == Array(expected))
    }
}

@Test func vocabularyIsSortedSetOfCharactersAndRoundTrips() throws {
    let text = "The quick brown fox, naïve café\nJUMPS ✓ over 😀 the lazy dog."
    let corpus = try Corpus.make(text: text, normalization: .raw)
    // Python: sorted(set(text)) sorts by code point.
    let expected = Set(text.unicodeScalars).sorted { $0.value < $1.value }
    #expect(corpus.vocabulary.scalars == expected)
    var tokens: [Int] = []
    for index in 0..<corpus.tokens.count { tokens.append(corpus.tokens[index]) }
    #expect(try corpus.vocabulary.decode(tokens) == text)
    let encoding = corpus.vocabulary.encode(text)
    #expect(encoding.tokens == tokens)
    #expect(encoding.dropped.isEmpty)
    // Counts per character.
    #expect(corpus.counts[corpus.vocabulary.index(of: "o")!] == text.filter { $0 == "o" }.count)
}

@Test func encodingAUserPromptNormalisesThenDropsUnknownCharacters() throws {
    let corpus = try Corpus.make(text: "hello world\n", normalization: NormalizationOptions())
    let encoding = corpus.vocabulary.encode("Héllo, Wörld! 😀")
    // Lowercased and folded first: "hello, world! "; ',', '!' and the emoji (dropped by the fold) are reported.
    #expect(try corpus.vocabulary.decode(encoding.tokens) == "hello world ")
    #expect(encoding.dropped == [",", "!"])
    #expect(encoding.droppedCount == 2)
    #expect(encoding.report.droppedNonASCII == 1)
    #expect(throws: CharLMError.tokenOutOfRange(token: 99, vocabularySize: corpus.vocabulary.count)) {
        try corpus.vocabulary.decode([0, 99])
    }
}

@Test func tokensUseOneByteUpTo256CharactersAndTwoAbove() throws {
    let small = try Corpus.make(text: String(repeating: "abc", count: 10), normalization: .raw)
    #expect(small.tokens.bytesPerToken == 1)
    let manyScalars = (0..<300).map { Character(Unicode.Scalar(0x4E00 + $0)!) }
    let large = try Corpus.make(text: String(manyScalars), normalization: .raw)
    #expect(large.vocabulary.count == 300)
    #expect(large.tokens.bytesPerToken == 2)
    #expect(large.tokens[299] == 299)
}

@Test func vocabularyAbove65535CharactersIsRefused() throws {
    // CJK ideographs and Hangul syllables: 20,992 + 42,720 + 11,172 distinct letters.
    var view = String.UnicodeScalarView()
    for range in [0x4E00...0x9FFF, 0x20000...0x2A6DF, 0xAC00...0xD7A3] {
        for value in range { view.append(Unicode.Scalar(value)!) }
    }
    #expect(throws: CharLMError.vocabularyTooLarge(size: 74_884)) {
        try Corpus.make(text: String(view), normalization: .raw)
    }
}

@Test func datasetSplitsLikeThePyTorchReference() throws {
    let corpus = try Corpus.make(text: String(repeating: "abcdefghij", count: 101), normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    // int(0.9 * 1010) = 909
    #expect(dataset.trainRange == 0..<909)
    #expect(dataset.validationRange == 909..<1010)
    // floor((101 - 1) / 10) windows of 10.
    #expect(dataset.validationWindowCount(length: 10) == 10)
    #expect(throws: CharLMError.self) { try Dataset(tokens: corpus.tokens, validationFraction: 1) }
}

@Test func batchesAreWindowsWhoseTargetsAreTheNextCharacters() throws {
    let text = String((0..<500).map { Character(Unicode.Scalar(0x4E00 + $0)!) })  // every character distinct
    let corpus = try Corpus.make(text: text, normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let (T, B) = (7, 5)
    var inputs = [Int32](repeating: -1, count: T * B)
    var targets = [Int32](repeating: -1, count: T * B)
    var generator = SeededGenerator(seed: 5)
    inputs.withUnsafeMutableBufferPointer { i in
        targets.withUnsafeMutableBufferPointer { o in
            dataset.sampleBatch(length: T, batch: B, generator: &generator, inputs: i.baseAddress!, targets: o.baseAddress!)
        }
    }
    for b in 0..<B {
        let start = Int(inputs[b])
        for t in 0..<T {
            #expect(Int(inputs[t * B + b]) == start + t)  // consecutive characters (distinct tokens = positions)
            #expect(Int(targets[t * B + b]) == start + t + 1)  // each position predicts the next
        }
        #expect(start + T < dataset.trainRange.upperBound)  // target never reaches the validation split
    }
}

@Test func validationWindowsFollowTheProtocol() throws {
    let text = String((0..<100).map { Character(Unicode.Scalar(0x4E00 + $0)!) })
    let corpus = try Corpus.make(text: text, normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.5)  // positions 50 ..< 100
    #expect(dataset.validationWindowCount(length: 7) == 7)  // floor(49 / 7)
    var inputs = [Int32](repeating: -1, count: 7 * 2)
    var targets = [Int32](repeating: -1, count: 7 * 2)
    inputs.withUnsafeMutableBufferPointer { i in
        targets.withUnsafeMutableBufferPointer { o in
            dataset.validationBatch(length: 7, first: 5, count: 2, inputs: i.baseAddress!, targets: o.baseAddress!)
        }
    }
    // Window 5 predicts positions 50+36 ... 50+42 from 50+35 ... 50+41.
    let window5Inputs: [Int32] = (0..<7).map { inputs[$0 * 2] }
    let window5Targets: [Int32] = (0..<7).map { targets[$0 * 2] }
    let window6Inputs: [Int32] = (0..<7).map { inputs[$0 * 2 + 1] }
    #expect(window5Inputs == Array(85...91))
    #expect(window5Targets == Array(86...92))
    #expect(window6Inputs == Array(92...98))
}
