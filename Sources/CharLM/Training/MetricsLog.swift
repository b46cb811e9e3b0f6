// The metrics log (`set log FILE`): one line per training step and one per validation, appended while training runs,
// for pandas, gnuplot or a spreadsheet. CSV with a header row, or JSON lines for a name ending in .jsonl or .json.
// A step's line leaves val_loss empty (JSON: null); a validation's line leaves train_loss empty.
//
//   step,epoch,train_loss,val_loss,lr,tokens_per_s,elapsed_s
//   10,0.5882,3.060838,,0.01,19771,0.162
//   10,0.5882,,3.094442,0.01,14117,0.227

import Foundation

/// One line of the log.
public struct MetricsRecord: Equatable, Sendable {
    /// Completed training steps.
    public var step: Int
    /// Passes over the training split: step * B * T / training characters.
    public var epoch: Double
    /// The step's training loss (nats per character), or nil on a validation's line.
    public var trainingLoss: Double?
    /// The validation loss after `step`, or nil on a step's line.
    public var validationLoss: Double?
    /// The learning rate the step used.
    public var learningRate: Float
    /// Training tokens per second so far in this `train`.
    public var tokensPerSecond: Double
    /// Seconds spent in `train` in this session (validations included).
    public var elapsedSeconds: Double

    public init(step: Int, epoch: Double, trainingLoss: Double?, validationLoss: Double?, learningRate: Float,
                tokensPerSecond: Double, elapsedSeconds: Double) {
        self.step = step
        self.epoch = epoch
        self.trainingLoss = trainingLoss
        self.validationLoss = validationLoss
        self.learningRate = learningRate
        self.tokensPerSecond = tokensPerSecond
        self.elapsedSeconds = elapsedSeconds
    }
}

/// An open metrics log.
public final class MetricsLog {
    public enum Format: Sendable {
        case csv
        case jsonLines
    }

    /// The columns, in order (CSV header; JSON keys).
    public static let columns = ["step", "epoch", "train_loss", "val_loss", "lr", "tokens_per_s", "elapsed_s"]
    static let csvHeader = columns.joined(separator: ",")

    /// JSON lines for a name ending in .jsonl or .json, else CSV.
    public static func format(forPath path: String) -> Format {
        let lowered = path.lowercased()
        return lowered.hasSuffix(".jsonl") || lowered.hasSuffix(".json") ? .jsonLines : .csv
    }

    public let path: String
    public let format: Format
    private let file: AppendingFile

    /// Opens `path` for appending. A new or empty file gets the CSV header; a file that is not empty must be a log of
    /// the same format (it starts with the header, or with `{"step":`), so nothing else is ever appended to.
    public init(path: String) throws {
        let format = Self.format(forPath: path)
        if let prefix = readFilePrefix(at: path, count: 256), !prefix.isEmpty {
            let firstLine = String(decoding: prefix.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            let ours = format == .csv ? firstLine == Self.csvHeader : firstLine.hasPrefix("{\"step\": ")
            guard ours else {
                throw CharLMError.appendFailed(
                    path: path, reason: "it is not empty and not a charlm \(format == .csv ? "CSV" : "JSON lines") metrics log "
                        + "(its first line is '\(abbreviated(firstLine, limit: 40))'), so nothing was appended: name a new file")
            }
        }
        file = try AppendingFile(path: path)
        self.path = path
        self.format = format
        if format == .csv && file.sizeWhenOpened == 0 { try file.append(Self.csvHeader + "\n") }
    }

    /// Appends one record.
    public func append(_ record: MetricsRecord) throws { try file.append(Self.line(record, format: format)) }

    /// A record as one line of `format`, newline included.
    public static func line(_ record: MetricsRecord, format: Format) -> String {
        let fields: [String?] = [
            String(record.step), String(format: "%.4f", record.epoch),
            record.trainingLoss.map { String(format: "%.6f", $0) }, record.validationLoss.map { String(format: "%.6f", $0) },
            formatSettingNumber(record.learningRate), String(format: "%.0f", record.tokensPerSecond),
            String(format: "%.3f", record.elapsedSeconds),
        ]
        switch format {
        case .csv:
            return fields.map { $0 ?? "" }.joined(separator: ",") + "\n"
        case .jsonLines:
            return "{" + zip(columns, fields).map { "\"\($0)\": \($1 ?? "null")" }.joined(separator: ", ") + "}\n"
        }
    }
}
