// The command-line lexer.

@testable import CharLMShell
import Testing

@Test func wordsQuotesEscapesAndComments() throws {
    #expect(try lex("gen \"ROMEO:\\n\" 300  # a comment").map(\.text) == ["gen", "ROMEO:\n", "300"])
    #expect(try lex("gen \"say \\\"hi\\\"\\tand \\\\ go\"").map(\.text) == ["gen", "say \"hi\"\tand \\ go"])
    #expect(try lex("  set   temp\t0.8 ").map(\.text) == ["set", "temp", "0.8"])
    #expect(try lex("# only a comment").isEmpty)
    #expect(try lex("").isEmpty)
    #expect(try lex("gen \"a # not a comment\"").map(\.text) == ["gen", "a # not a comment"])
    let words = try lex("gen \"\" 5")
    #expect(words[1] == Word("", quoted: true, column: 5))
    #expect(words[2] == Word("5", quoted: false, column: 8))
    #expect(try lex("load my\" file\".txt").map(\.text) == ["load", "my file.txt"])
}

@Test func malformedLinesReportTheColumn() {
    #expect(throws: LexError(message: "unterminated quote", column: 5)) { try lex("gen \"ROMEO: 300") }
    #expect(throws: LexError(message: "unknown escape '\\q'; use \\n, \\t, \\\" or \\\\", column: 7)) { try lex("gen \"a\\q\"") }
}
