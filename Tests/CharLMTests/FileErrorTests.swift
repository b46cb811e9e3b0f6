// Bad corpus files: each gets its own clear error.

import CharLM
import Foundation
import Testing

/// A fresh temporary folder for one test.
func makeTemporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("charlm-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Test func aMissingFileIsReported() throws {
    let path = try makeTemporaryFolder().appendingPathComponent("nope.txt").path
    let error = try #require(throws: CharLMError.self) { try Corpus.load(path: path, normalization: .init()) }
    #expect(error == .fileNotFound(path: path))
    #expect(error.description == "no such file '\(path)': check the path")
}

@Test func aDirectoryIsReported() throws {
    let path = try makeTemporaryFolder().path
    #expect(throws: CharLMError.isDirectory(path: path)) { try Corpus.load(path: path, normalization: .init()) }
}

@Test func anEmptyFileIsReported() throws {
    let url = try makeTemporaryFolder().appendingPathComponent("empty.txt")
    try Data().write(to: url)
    #expect(throws: CharLMError.emptyFile(path: url.path)) { try Corpus.load(path: url.path, normalization: .init()) }
}

@Test func aBinaryFileIsReported() throws {
    let folder = try makeTemporaryFolder()
    let withNul = folder.appendingPathComponent("a.bin")
    try Data([0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x00, 0x00]).write(to: withNul)
    #expect(throws: CharLMError.binaryFile(path: withNul.path, reason: "it has a NUL byte at offset 6")) {
        try Corpus.load(path: withNul.path, normalization: .init())
    }
    var generator = SeededGenerator(seed: 1)
    let noise = folder.appendingPathComponent("noise.dat")
    try Data((0..<4096).map { _ in UInt8(0x80 + generator.nextIndex(below: 0x7F)) }).write(to: noise)
    let error = try #require(throws: CharLMError.self) { try Corpus.load(path: noise.path, normalization: .init()) }
    guard case .binaryFile = error else { Issue.record("unexpected \(error)"); return }
}

@Test func aFileWithNothingLeftAfterNormalisationIsReported() throws {
    let url = try makeTemporaryFolder().appendingPathComponent("emoji.txt")
    try "😀🎉\u{200B}".write(to: url, atomically: true, encoding: .utf8)
    #expect(throws: CharLMError.nothingLeftAfterNormalization(path: url.path, removed: 3)) {
        try Corpus.load(path: url.path, normalization: .init())
    }
    // The same file is fine with ascii off.
    let corpus = try Corpus.load(path: url.path, normalization: NormalizationOptions(lowercase: true, ascii: false))
    #expect(corpus.vocabulary.count == 2)
}

@Test func anUnreadableFileIsReported() throws {
    if getuid() != 0 {
        let url = try makeTemporaryFolder().appendingPathComponent("secret.txt")
        try "text".write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: url.path)
        #expect(throws: CharLMError.unreadable(path: url.path, reason: "permission denied")) {
            try Corpus.load(path: url.path, normalization: .init())
        }
    }
    // Root reads past permissions, so (as in CI) show the read-failure path with a file that exists but whose read
    // fails: /proc/self/mem refuses reads at offset 0.
    #if os(Linux)
    let error = try #require(throws: CharLMError.self) { try Corpus.load(path: "/proc/self/mem", normalization: .init()) }
    guard case .unreadable(let path, let reason) = error else { Issue.record("unexpected \(error)"); return }
    #expect(path == "/proc/self/mem" && !reason.isEmpty)
    #endif
}

@Test func aValidFileLoadsWithItsReport() throws {
    let url = try makeTemporaryFolder().appendingPathComponent("ok.txt")
    try Data("Hello\r\nWorld\u{FF}".utf8 + [0xFF]).write(to: url)
    let corpus = try Corpus.load(path: url.path, normalization: NormalizationOptions(lowercase: true, ascii: false))
    #expect(corpus.report.lineBreaksConverted == 1)
    #expect(corpus.report.replacedSequences == 1)
    #expect(try corpus.vocabulary.decode((0..<corpus.tokens.count).map { corpus.tokens[$0] }) == "hello\nworldÿ\u{FFFD}")
}
