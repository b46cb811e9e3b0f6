// Tab completion as a pure function of (line, cursor).

@testable import CharLMShell
import Foundation
import Testing

@Test func commandNamesComplete() {
    #expect(completions(line: "tr", cursor: 2) == ["trace", "train"])
    #expect(completions(line: "trai", cursor: 4) == ["train"])
    #expect(completions(line: "cells t", cursor: 7) == ["top"])
    #expect(completions(line: "s", cursor: 1) == ["samples", "save", "seed", "set", "show", "source"])
    #expect(completions(line: "", cursor: 0).count == Commands.table.flatMap { [$0.name] + $0.aliases }.count)
    #expect(completions(line: "zz", cursor: 2).isEmpty)
}

@Test func settingKeysAndValuesComplete() {
    #expect(completions(line: "set lo", cursor: 6) == ["lowercase", "log"])
    #expect(completions(line: "set autosave o", cursor: 14) == ["off"])
    #expect(completions(line: "train u", cursor: 7) == ["until"])
    #expect(completions(line: "show te", cursor: 7) == ["temp"])
    #expect(completions(line: "set ascii o", cursor: 11) == ["on", "off"])
    #expect(completions(line: "set ascii of", cursor: 12) == ["off"])
    #expect(completions(line: "set hidden ", cursor: 11).isEmpty)
    #expect(completions(line: "help tra", cursor: 8) == ["train", "trace"])
    #expect(completions(line: "set dec", cursor: 7) == ["decay"])
    #expect(completions(line: "train 5 st", cursor: 10) == ["steps"])
    // The cursor decides: completing the first word of "set lo" with the cursor after "se".
    #expect(completions(line: "set lo", cursor: 2) == ["seed", "set"])
}

@Test func pathsAndDatasetsComplete() throws {
    let folder = try temporaryFolder()
    try "x".write(to: folder.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
    try "x".write(to: folder.appendingPathComponent("corner.clm"), atomically: true, encoding: .utf8)
    try FileManager.default.createDirectory(at: folder.appendingPathComponent("cors"), withIntermediateDirectories: false)
    let prefix = folder.path + "/cor"
    #expect(completions(line: "load \(prefix)", cursor: 5 + prefix.count) == [folder.path + "/corner.clm", folder.path + "/corpus.txt", folder.path + "/cors/"])
    #expect(completions(line: "source \(folder.path)/corn", cursor: 12 + folder.path.count + 1) == [folder.path + "/corner.clm"])
    #expect(completions(line: "save \(folder.path)/corp", cursor: 10 + folder.path.count + 1) == [folder.path + "/corpus.txt"])
    #expect(completions(line: "load tiny", cursor: 9) == ["tinyshakespeare"])
}
