import Foundation

/// What one HTTP exchange answered: the same shape from every transport.
struct HTTPAnswer: Sendable, Equatable {
    var status: Int
    var body: Data
}

/// Ratchet's HTTP client, for scrapes, Prometheus queries and webhooks: `http` over sockets
/// Ratchet reads itself (`PlainHTTP`, `HTTPPost`), `https` through the curl command-line tool
/// (`CurlHTTP`, adr/0073), so that the `ratchet` binary links no libcurl. Every transport
/// returns an `HTTPAnswer` (any status: the caller decides what it accepts) or throws one
/// `RatchetError` line, `METHOD URL: reason`.
enum HTTPClient {
    /// A GET of `url` within `timeout` seconds; a body over `maxBytes` is refused, never held.
    static func get(_ url: URL, timeout: TimeInterval, maxBytes: Int, accept: String,
                    environment: [String: String] = ProcessInfo.processInfo.environment) throws -> HTTPAnswer {
        switch url.scheme?.lowercased() {
        case "http":
            let (status, body) = try PlainHTTP.get(url, timeout: timeout, maxBytes: maxBytes, accept: accept)
            return HTTPAnswer(status: status, body: body)
        case "https":
            return try CurlHTTP.exchange(CurlHTTP.Request(method: "GET", url: url, headers: ["Accept: \(accept)"], body: nil,
                                                          timeout: timeout, maxBytes: maxBytes), environment: environment)
        default:
            throw failure("GET", url, "not an http or https URL")
        }
    }

    /// A POST of `body` (JSON) to `url` within `timeout` seconds; the answer's body is not kept.
    static func postJSON(_ body: Data, to url: URL, timeout: TimeInterval,
                         environment: [String: String] = ProcessInfo.processInfo.environment) throws -> HTTPAnswer {
        switch url.scheme?.lowercased() {
        case "http":
            return HTTPAnswer(status: try HTTPPost.post(body, to: url, timeout: timeout), body: Data())
        case "https":
            let request = CurlHTTP.Request(method: "POST", url: url, headers: ["Content-Type: application/json"], body: body,
                                           timeout: timeout, maxBytes: 64 << 10, discardsBody: true)
            return HTTPAnswer(status: try CurlHTTP.exchange(request, environment: environment).status, body: Data())
        default:
            throw failure("POST", url, "not an http or https URL")
        }
    }

    /// The one error line of every transport: `METHOD URL: reason`.
    static func failure(_ method: String, _ url: URL, _ reason: String) -> RatchetError {
        RatchetError("\(method) \(url.absoluteString): \(reason)")
    }

    /// `12 s`, `0.5 s`.
    static func formatSeconds(_ seconds: TimeInterval) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
