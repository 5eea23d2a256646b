/// One sample of a series: a time in milliseconds since the epoch and a value.
public struct Sample: Sendable, Equatable {
    /// Milliseconds since 1970-01-01 UTC.
    public var time: Int64
    /// The value (NaN and ±Inf are values like any other).
    public var value: Double
    /// Makes a sample.
    public init(time: Int64, value: Double) { self.time = time; self.value = value }
}

/// One series of a range vector or a matrix result.
public struct RangeSeries: Sendable, Equatable {
    /// The series' labels.
    public var labels: Labels
    /// Its samples, oldest first.
    public var samples: [Sample]
    /// Makes a series.
    public init(labels: Labels, samples: [Sample]) { self.labels = labels; self.samples = samples }
}

/// One element of an instant vector.
public struct InstantSample: Sendable, Equatable {
    /// The series' labels.
    public var labels: Labels
    /// The value at the evaluation time.
    public var value: Double
    /// Makes an element.
    public init(labels: Labels, value: Double) { self.labels = labels; self.value = value }
}

/// The result of an instant query, as Prometheus's `resultType` names them.
public enum QueryValue: Sendable, Equatable {
    case scalar(Double)
    case vector([InstantSample])
    case matrix([RangeSeries])
    case string(String)

    /// `scalar`, `vector`, `matrix` or `string`.
    public var resultType: String {
        switch self {
        case .scalar: return "scalar"
        case .vector: return "vector"
        case .matrix: return "matrix"
        case .string: return "string"
        }
    }
}
