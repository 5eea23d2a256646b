import ArgumentParser
import Foundation
import RatchetCore
import RatchetMetrics

struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Evaluate a PromQL instant query for a service (as 'promtool query instant').")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "The service whose metrics are queried.") var service: String
    @Option(help: "Evaluation time: Unix seconds or RFC 3339 (default: now).") var time: String?
    @Argument(help: "The PromQL expression.") var expression: String

    func validate() throws {
        if let time, QueryTime.parse(time) == nil { throw RatchetError("invalid time '\(Names.printable(time))': expected Unix seconds or RFC 3339") }
    }

    func run() throws {
        let workspace = try workspace.openForReading()
        let at = time.flatMap(QueryTime.parse) ?? Date()
        let value = try workspace.query(service: service, expression: expression, at: at)
        let milliseconds = Int64((at.timeIntervalSince1970 * 1000).rounded())
        if output.json { return Swift.print(PrometheusJSON.data(value, at: milliseconds)) }
        switch value {
        case .scalar(let v): print("scalar: \(PrometheusJSON.formatValue(v))")
        case .string(let s): print("string: \(s)")
        case .vector(let samples):
            for sample in samples.sorted(by: { $0.labels < $1.labels }) { print("\(sample.labels) => \(PrometheusJSON.formatValue(sample.value))") }
        case .matrix(let series):
            for one in series.sorted(by: { $0.labels < $1.labels }) {
                print("\(one.labels) =>")
                for sample in one.samples { print("  \(PrometheusJSON.formatValue(sample.value)) @\(PrometheusJSON.timestamp(sample.time))") }
            }
        }
    }
}

/// `--time`: Unix seconds (with a fraction) or RFC 3339, as Prometheus's API accepts.
enum QueryTime {
    static func parse(_ text: String) -> Date? {
        if let seconds = Double(text), seconds.isFinite { return Date(timeIntervalSince1970: seconds) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
