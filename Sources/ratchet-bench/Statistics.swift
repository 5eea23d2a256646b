import Foundation

/// Median, p90 and max of a series of durations, in milliseconds.
struct Figure: Codable {
    var name: String
    var size: String
    var pipeline: String
    var runs: Int
    var median: Double
    var p90: Double
    var max: Double
    /// The 1-minute load average when the figure started and ended (figures measured on a
    /// shared machine: read them beside it and beside the CPU-time figure).
    var loadAverage: [Double]?

    init(name: String, size: String, pipeline: String, samples: [Double], loadAverage: [Double]? = nil) {
        self.loadAverage = loadAverage
        let sorted = samples.sorted()
        self.name = name
        self.size = size
        self.pipeline = pipeline
        runs = sorted.count
        median = sorted.isEmpty ? 0 : (sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2)
        p90 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.9).rounded(.up)) - 1)]
        max = sorted.last ?? 0
    }
}

/// Times `body` in milliseconds.
func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
}

/// The wall-clock and CPU (user + system) milliseconds `body` takes in this process. On a
/// machine shared with other work, CPU time is the steadier figure of the two.
func wallAndCPUMilliseconds(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    func cpu() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
    }
    let before = cpu()
    let wall = try milliseconds(body)
    return (wall, cpu() - before)
}

/// The CPU (user + system) milliseconds of the children this process has waited for,
/// their own waited-for descendants included (sandboxes, agents, git, deploys).
func childrenCPUMilliseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

/// The 1-minute load average (`/proc/loadavg`), or -1 when it cannot be read.
func oneMinuteLoadAverage() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
          let first = text.split(separator: " ").first, let value = Double(first) else { return -1 }
    return value
}

/// Wall-clock and CPU samples of work done by child processes (the `ratchet` binary, git):
/// two figures, `PIPELINE` and `PIPELINE cpu`, each with the load average around them.
struct ChildTimes {
    var wall: [Double] = []
    var cpu: [Double] = []
    let loadAtStart = oneMinuteLoadAverage()

    mutating func measure(_ body: () throws -> Void) rethrows {
        let before = childrenCPUMilliseconds()
        wall.append(try milliseconds(body))
        cpu.append(childrenCPUMilliseconds() - before)
    }

    func figures(name: String, size: String, pipeline: String) -> [Figure] {
        let load = [loadAtStart, oneMinuteLoadAverage()]
        return [Figure(name: name, size: size, pipeline: pipeline, samples: wall, loadAverage: load),
                Figure(name: name, size: size, pipeline: pipeline + " cpu", samples: cpu, loadAverage: load)]
    }
}

enum Format {
    static func count(_ value: Int) -> String { value >= 1000 && value % 1000 == 0 ? "\(value / 1000)k" : "\(value)" }
    static func ms(_ value: Double) -> String { value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value) }
}

/// The peak resident set size of this process, in MiB.
func peakMemoryMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
