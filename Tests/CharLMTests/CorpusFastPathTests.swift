// The plain-ASCII fast path of corpus loading against the general normalising path: same vocabulary, tokens, counts
// and report, with lowercasing on and off; and texts that need the general path do not take the fast one.

@testable import CharLM
import Foundation
import Testing

@Test(arguments: [NormalizationOptions.raw, NormalizationOptions(lowercase: true, ascii: true),
                  NormalizationOptions(lowercase: true, ascii: false), NormalizationOptions(lowercase: false, ascii: true)])
func plainASCIIFastPathMatchesTheNormaliser(options: NormalizationOptions) throws {
    var generator = SeededGenerator(seed: 4)
    // Every printable ASCII character, tabs, newlines and DEL, upper and lower case.
    let alphabet = Array(0x20...0x7E).map { UInt8($0) } + [0x09, 0x0A, 0x0A, 0x7F]
    let bytes = (0..<20_000).map { _ in alphabet[generator.nextIndex(below: alphabet.count)] }
    let fast = try #require(try Corpus.makeFromPlainASCII(bytes, normalization: options))
    let general = try Corpus.makeByNormalizing(bytes, normalization: options, name: "test")
    #expect(fast.vocabulary == general.vocabulary)
    #expect(fast.tokens == general.tokens)
    #expect(fast.counts == general.counts)
    #expect(fast.report == general.report)
    #expect(fast.report.lowercased > 0 || !options.lowercase)
}

@Test func textsThatNeedNormalisingTakeTheGeneralPath() throws {
    for text in ["line one\r\nline two", "caf\u{E9}", "zero\u{200B}width"] {
        #expect(try Corpus.makeFromPlainASCII(Array(text.utf8), normalization: .raw) == nil)
    }
    // And loading them still normalises: \r\n becomes \n.
    let corpus = try Corpus.make(text: "a\r\nb", normalization: .raw)
    #expect(corpus.report.lineBreaksConverted == 1 && corpus.tokens.count == 3)
}
