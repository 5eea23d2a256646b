/// Where the evaluator reads samples from: the workspace store, or memory in tests.
public protocol SampleSource {
    /// Every series whose labels satisfy all `matchers`, with its points whose time lies in
    /// `start...end` (milliseconds, both ends included), oldest first. Series without
    /// points in the window may be left out.
    func select(_ matchers: [LabelMatcher], start: Int64, end: Int64) throws -> [SeriesPoints]
}

/// One series as a source returns it.
public struct SeriesPoints: Sendable, Equatable {
    public var labels: Labels
    public var points: [Point]
    /// Makes a series.
    public init(labels: Labels, points: [Point]) { self.labels = labels; self.points = points }
}

/// A raw sample, or a rollup of several (a raw sample is a rollup of one).
///
/// Rollups let `rate`, `increase` and `*_over_time` run over long windows: `value` is the last
/// value (a counter's reading at `time`, the time of the last sample rolled up), and
/// `count`/`sum`/`min`/`max` summarise every sample rolled up.
public struct Point: Sendable, Equatable {
    public var time: Int64
    public var value: Double
    public var count: Int
    public var sum: Double
    public var min: Double
    public var max: Double

    /// A raw sample.
    public init(time: Int64, value: Double) {
        self.time = time; self.value = value; count = 1; sum = value; min = value; max = value
    }

    /// A rollup.
    public init(time: Int64, value: Double, count: Int, sum: Double, min: Double, max: Double) {
        self.time = time; self.value = value; self.count = count; self.sum = sum; self.min = min; self.max = max
    }
}

/// Series kept in memory: a `SampleSource` for tests and for scraped pages evaluated in place.
public struct MemorySource: SampleSource, Sendable {
    public var series: [SeriesPoints]
    /// Makes a source from series whose points are oldest first.
    public init(_ series: [SeriesPoints]) { self.series = series }

    /// Builds a source from timestamped lines (each line's time, else `defaultTime`).
    public init(lines: [Exposition.Line], defaultTime: Int64) {
        var bySeries: [Labels: [Point]] = [:]
        for line in lines { bySeries[line.labels, default: []].append(Point(time: line.time ?? defaultTime, value: line.value)) }
        series = bySeries.map { SeriesPoints(labels: $0.key, points: $0.value.sorted { $0.time < $1.time }) }
    }

    public func select(_ matchers: [LabelMatcher], start: Int64, end: Int64) throws -> [SeriesPoints] {
        series.compactMap { series in
            guard matchers.matches(series.labels) else { return nil }
            let points = series.points.filter { $0.time >= start && $0.time <= end }
            return points.isEmpty ? nil : SeriesPoints(labels: series.labels, points: points)
        }
    }
}
