import Foundation
import GRDB
import RatchetMetrics
import RatchetStore

/// What one scrape did.
public struct ScrapeReport: Codable, Sendable, Equatable {
    public var service: String
    /// The URL or file scraped.
    public var target: String
    /// Whether the target answered with a page (the `up` sample's value).
    public var up: Bool
    /// Sample lines read from the page.
    public var samplesScraped: Int
    /// Samples written to the store, `up` and the other scrape series included.
    public var samplesStored: Int
    /// Malformed lines, as `line N: why` (the rest of the page is kept).
    public var lineErrors: [String]
    /// Why the target could not be read, when `up` is false.
    public var error: String?
    /// When the scrape started.
    public var time: Date
}

extension Workspace {
    /// Scrapes the service's `metrics.scrape` target once into the store and records `up`
    /// (1, or 0 when the target cannot be read within `timeout` seconds), as Prometheus does.
    /// The samples and the `metrics.scraped` event are written in one transaction.
    public func scrape(service: String, timeout: TimeInterval) throws -> ScrapeReport {
        let name = try self.service(service).name
        let config = try serviceConfig(name)
        guard let target = config.metricsScrape else {
            throw RatchetError("service '\(name)' has no metrics.scrape in service.yaml")
        }
        let started = Date()
        var report = ScrapeReport(service: name, target: target, up: false, samplesScraped: 0, samplesStored: 0, lineErrors: [], error: nil, time: started)
        var samples: [(labels: Labels, sample: Sample)] = []
        let now = Self.milliseconds(started)
        let targetLabels = ["job": name, "instance": Self.instanceLabel(target)]
        do {
            let page = Exposition.parse(try readScrapeTarget(target, service: name, timeout: timeout), format: .text)
            // As Prometheus's sample_limit: a page over it fails whole (up = 0), so that a
            // target cannot flood the store with new series.
            guard page.samples.count <= Self.scrapeSampleLimit else {
                throw RatchetError("the page has \(page.samples.count) samples, over the limit of \(Self.scrapeSampleLimit) per scrape")
            }
            report.up = true
            report.samplesScraped = page.samples.count
            report.lineErrors = page.errors.map(\.description)
            samples = page.samples.map { (Self.attach(targetLabels, to: $0.labels), Sample(time: $0.time ?? now, value: $0.value)) }
        } catch {
            report.error = describe(error)
        }
        let duration = Date().timeIntervalSince(started)
        for (metric, value) in [("up", report.up ? 1 : 0), ("scrape_duration_seconds", duration), ("scrape_samples_scraped", Double(report.samplesScraped))] {
            samples.append((Labels(targetLabels.merging([Labels.metricName: metric]) { a, _ in a }), Sample(time: now, value: value)))
        }
        try database.write { db in
            report.samplesStored = try MetricStore.append(db, service: name, samples: samples, now: now).stored
            _ = try MetricStore.applyRetention(db, service: name, now: now)
            try Failpoints.hit("metrics.scrape-written")
            try RatchetDatabase.appendEvent(db, kind: "metrics.scraped", service: name, data: [
                "target": .string(target), "up": .bool(report.up), "samples": .number(Double(report.samplesStored)),
                "line_errors": .number(Double(report.lineErrors.count)), "error": report.error.map(JSONValue.string) ?? .null,
            ])
        }
        return report
    }

    /// The page at `target`: an http(s) URL, or a file (relative to the service's main checkout).
    func readScrapeTarget(_ target: String, service: String, timeout: TimeInterval) throws -> String {
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            guard let url = URL(string: target) else { throw RatchetError("metrics.scrape '\(target)' is not a valid URL") }
            return String(decoding: try MetricsHTTP.get(url, timeout: timeout), as: UTF8.self)
        }
        // A file in the main checkout is landed code's: opened beneath it, no link followed,
        // regular files only, bounded like a page.
        let (folder, relative) = target.hasPrefix("/")
            ? ((target as NSString).deletingLastPathComponent, (target as NSString).lastPathComponent)
            : (servicePath(service), target)
        let bytes = try BeneathFolder(path: folder, fileLimit: MetricsHTTP.defaultMaxBytes).read(relative)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The most samples one scrape stores (Prometheus's `sample_limit`); a page over it fails whole.
    static let scrapeSampleLimit = 200_000

    /// `host:port` for a URL, the path for a file (Prometheus's `instance` label).
    static func instanceLabel(_ target: String) -> String {
        guard let url = URL(string: target), let host = url.host, url.scheme?.hasPrefix("http") == true else { return target }
        return "\(host):\(url.port ?? (url.scheme == "https" ? 443 : 80))"
    }

    /// The target's labels added to a scraped series; a series' own `job`/`instance` become `exported_job`/`exported_instance`.
    static func attach(_ target: [String: String], to labels: Labels) -> Labels {
        var pairs = labels.pairs
        for (name, value) in target {
            if let own = pairs[name] { pairs["exported_" + name] = own }
            pairs[name] = value
        }
        return Labels(pairs)
    }

    /// Milliseconds since the epoch.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}
