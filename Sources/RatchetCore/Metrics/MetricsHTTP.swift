import Foundation

/// One HTTP GET with a hard deadline and a bounded body, for scrapes and Prometheus queries,
/// through `HTTPClient` (`http` over Ratchet's own socket, `https` through the curl tool; both
/// hold the body to `maxBytes`: adr/0072, adr/0073).
enum MetricsHTTP {
    /// The most bytes of a scrape page or query answer.
    static let defaultMaxBytes = 16 << 20

    /// The body of a 2xx answer from `url`, or a `RatchetError` saying why not (timeout, refused,
    /// status, body over `maxBytes`). With `errorBodies`, a 400/422/503 answer's body is returned
    /// (Prometheus explains a refused query there). Returns within `timeout` seconds plus a few seconds' grace.
    static func get(_ url: URL, timeout: TimeInterval, maxBytes: Int = defaultMaxBytes, accept: String = "text/plain;version=0.0.4",
                    errorBodies: Bool = false, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Data {
        let answer = try HTTPClient.get(url, timeout: timeout, maxBytes: maxBytes, accept: accept, environment: environment)
        return try accepted(answer.status, answer.body, url, errorBodies: errorBodies)
    }

    /// `body` when `status` is 2xx, or (with `errorBodies`) a 400/422/503 with a body.
    static func accepted(_ status: Int?, _ body: Data, _ url: URL, errorBodies: Bool) throws -> Data {
        if let status, !(200..<300).contains(status), !(errorBodies && [400, 422, 503].contains(status) && !body.isEmpty) {
            throw HTTPClient.failure("GET", url, "HTTP status \(status)")
        }
        return body
    }
}
