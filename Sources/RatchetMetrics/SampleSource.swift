/// Where the evaluator reads samples from: the workspace store, or memory in tests.
public protocol SampleSource {
    /// Every series whose labels satisfy all `matchers`, with its points whose time lies in
    /// `start...end` (milliseconds, both ends included), oldest first. Series without
    /// points in the window may be left out.
    func select(_ matchers: [LabelMatcher], start: Int64, end: Int64) throws -> [SeriesPoints]

    /// The same, where `summaries` allows a source to answer whole stretches of the window with
    /// rollup points that stand exactly for the samples they summarise (`Point`): the range
    /// functions that only need counts, sums, extremes, first and last values, resets and
    /// changes ask for them (`RangeFunctions.summarizable`).
    func select(_ matchers: [LabelMatcher], start: Int64, end: Int64, summaries: Bool) throws -> [SeriesPoints]
}

extension SampleSource {
    /// Sources without rollups answer with their samples.
    public func select(_ matchers: [LabelMatcher], start: Int64, end: Int64, summaries: Bool) throws -> [SeriesPoints] {
        try select(matchers, start: start, end: end)
    }
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
/// Rollups let `rate`, `increase`, `changes`, `resets` and `*_over_time` run over long windows
/// without reading every sample: `firstTime`/`first` and `time`/`value` are the first and last
/// samples rolled up, `count`/`sum`/`min`/`max` summarise them all, and `resets`/`resetSum`/
/// `changes` are what `resets()`, `rate()` (the values before each reset, added back) and
/// `changes()` count between consecutive samples inside the rollup. So a rollup whose samples
/// all lie in a window stands exactly for them.
public struct Point: Sendable, Equatable {
    /// The last sample's time.
    public var time: Int64
    /// The last sample's value.
    public var value: Double
    public var count: Int
    public var sum: Double
    public var min: Double
    public var max: Double
    /// The first sample's time and value.
    public var firstTime: Int64
    public var first: Double
    /// Decreases between consecutive samples inside the rollup, and the sum of the values before them.
    public var resets: Int
    public var resetSum: Double
    /// Value changes between consecutive samples inside the rollup (NaN to NaN is no change).
    public var changes: Int

    /// A raw sample.
    public init(time: Int64, value: Double) {
        self.time = time; self.value = value; count = 1; sum = value; min = value; max = value
        firstTime = time; first = value; resets = 0; resetSum = 0; changes = 0
    }

    /// A rollup. Without `firstTime`, it stands for its last sample only as far as `rate`,
    /// `increase`, `changes` and `resets` see it (a rollup whose first sample is not known).
    public init(time: Int64, value: Double, count: Int, sum: Double, min: Double, max: Double,
                firstTime: Int64? = nil, first: Double = .nan, resets: Int = 0, resetSum: Double = 0, changes: Int = 0) {
        self.time = time; self.value = value; self.count = count; self.sum = sum; self.min = min; self.max = max
        self.firstTime = firstTime ?? time; self.first = firstTime == nil ? value : first
        self.resets = firstTime == nil ? 0 : resets; self.resetSum = firstTime == nil ? 0 : resetSum; self.changes = firstTime == nil ? 0 : changes
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
