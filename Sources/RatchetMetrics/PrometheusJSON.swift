import Foundation

/// The `data` object of Prometheus's `/api/v1/query`: `{"resultType":…,"result":…}`, written and read.
public enum PrometheusJSON {
    /// Encodes `value` at `time` (ms) exactly as Prometheus does: values as strings
    /// (Go's `FormatFloat(v, 'f', -1, 64)`; `NaN`, `+Inf`, `-Inf`), timestamps as seconds,
    /// label maps with sorted keys; vector and matrix series sorted by their labels.
    public static func data(_ value: QueryValue, at time: Int64) -> String {
        let result: String
        switch value {
        case .scalar(let v): result = point(time, v)
        case .string(let s): result = "[\(timestamp(time)),\(quote(s))]"
        case .vector(let samples):
            result = "[" + samples.sorted { $0.labels < $1.labels }
                .map { "{\"metric\":\(metric($0.labels)),\"value\":\(point(time, $0.value))}" }.joined(separator: ",") + "]"
        case .matrix(let series):
            result = "[" + series.sorted { $0.labels < $1.labels }
                .map { "{\"metric\":\(metric($0.labels)),\"values\":[\($0.samples.map { point($0.time, $0.value) }.joined(separator: ","))]}" }
                .joined(separator: ",") + "]"
        }
        return "{\"resultType\":\"\(value.resultType)\",\"result\":\(result)}"
    }

    private static func point(_ time: Int64, _ value: Double) -> String { "[\(timestamp(time)),\"\(formatValue(value))\"]" }

    private static func metric(_ labels: Labels) -> String {
        "{" + labels.sorted.map { "\(quote($0.name)):\(quote($0.value))" }.joined(separator: ",") + "}"
    }

    /// Milliseconds as seconds with up to three decimals, trailing zeros dropped (`1700000000.5`).
    public static func timestamp(_ milliseconds: Int64) -> String {
        let sign = milliseconds < 0 ? "-" : ""
        let magnitude = milliseconds.magnitude
        let seconds = magnitude / 1000, fraction = magnitude % 1000
        guard fraction != 0 else { return "\(sign)\(seconds)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(sign)\(seconds).\(digits)"
    }

    /// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that reads back as `v`, never an exponent.
    public static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        let shortest = "\(v)"
        guard let e = shortest.firstIndex(where: { $0 == "e" || $0 == "E" }) else {
            return shortest.hasSuffix(".0") ? String(shortest.dropLast(2)) : shortest
        }
        let exponent = Int(shortest[shortest.index(after: e)...])!
        var mantissa = String(shortest[..<e])
        let negative = mantissa.hasPrefix("-")
        if negative { mantissa.removeFirst() }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        var digits = String(parts[0]) + (parts.count > 1 ? String(parts[1]) : "")
        var pointIndex = parts[0].count + exponent
        while digits.count > 1 && digits.hasSuffix("0") && digits.count > pointIndex { digits.removeLast() }
        if pointIndex <= 0 {
            digits = String(repeating: "0", count: -pointIndex + 1) + digits
            pointIndex = 1
        }
        if digits.count < pointIndex { digits += String(repeating: "0", count: pointIndex - digits.count) }
        let integer = digits.prefix(pointIndex), fraction = digits.dropFirst(pointIndex)
        return (negative ? "-" : "") + integer + (fraction.isEmpty ? "" : "." + fraction)
    }

    /// A JSON string literal.
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// Reads a `/api/v1/query` response body (`{"status":"success","data":{…}}`) into a value;
    /// a `status: error` response throws its `error` text.
    public static func parseResponse(_ body: Data) throws -> QueryValue {
        guard let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EvaluationError("the Prometheus response is not a JSON object")
        }
        if root["status"] as? String != "success" {
            throw EvaluationError("Prometheus: \(root["errorType"] as? String ?? "error"): \(root["error"] as? String ?? "no error text")")
        }
        guard let data = root["data"] as? [String: Any] else { throw EvaluationError("the Prometheus response has no data") }
        return try parseData(data)
    }

    /// Reads a `data` object.
    public static func parseData(_ data: [String: Any]) throws -> QueryValue {
        func pointValue(_ any: Any?) throws -> (Int64, Double) {
            guard let pair = any as? [Any], pair.count == 2, let seconds = (pair[0] as? NSNumber)?.doubleValue, abs(seconds) < 9.2e15,
                  let text = pair[1] as? String, let value = LineReader.parseFloat(text) else {
                throw EvaluationError("malformed sample in the Prometheus response")
            }
            return (Int64((seconds * 1000).rounded()), value)
        }
        func labels(_ any: Any?) -> Labels { Labels((any as? [String: String]) ?? [:]) }
        switch data["resultType"] as? String {
        case "scalar": return .scalar(try pointValue(data["result"]).1)
        case "string": return .string(((data["result"] as? [Any])?.last as? String) ?? "")
        case "vector":
            return .vector(try ((data["result"] as? [[String: Any]]) ?? []).map {
                InstantSample(labels: labels($0["metric"]), value: try pointValue($0["value"]).1)
            })
        case "matrix":
            return .matrix(try ((data["result"] as? [[String: Any]]) ?? []).map { series in
                RangeSeries(labels: labels(series["metric"]), samples: try ((series["values"] as? [Any]) ?? []).map {
                    let (time, value) = try pointValue($0)
                    return Sample(time: time, value: value)
                })
            })
        default: throw EvaluationError("unknown resultType in the Prometheus response")
        }
    }
}
