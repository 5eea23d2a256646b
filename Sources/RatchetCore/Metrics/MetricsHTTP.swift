import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP GET with a hard deadline and a bounded body, for scrapes and Prometheus queries:
/// `http` over Ratchet's own socket reading (`PlainHTTP`, strictly bounded), `https` through
/// URLSession, whose body is read as it streams and the request cancelled at `maxBytes` (its
/// queue can hold more before the cancel lands: adr/0072).
enum MetricsHTTP {
    /// The most bytes of a scrape page or query answer.
    static let defaultMaxBytes = 16 << 20

    /// The body of a 2xx answer from `url`, or a `RatchetError` saying why not (timeout, refused,
    /// status, body over `maxBytes`). With `errorBodies`, a 400/422/503 answer's body is returned
    /// (Prometheus explains a refused query there). Returns within `timeout` seconds plus a second's grace.
    static func get(_ url: URL, timeout: TimeInterval, maxBytes: Int = defaultMaxBytes, accept: String = "text/plain;version=0.0.4",
                    errorBodies: Bool = false) throws -> Data {
        if url.scheme?.lowercased() == "http" {
            let (status, body) = try PlainHTTP.get(url, timeout: timeout, maxBytes: maxBytes, accept: accept)
            return try accepted(status, body, url, errorBodies: errorBodies)
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        let body = BoundedBody(limit: maxBytes)
        let session = URLSession(configuration: configuration, delegate: body, delegateQueue: nil)
        defer { session.invalidateAndCancel() }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.setValue(accept, forHTTPHeaderField: "Accept")
        let task = session.dataTask(with: request)
        task.resume()
        guard body.done.wait(timeout: .now() + timeout + 1) == .success else {
            task.cancel()
            throw RatchetError("GET \(url.absoluteString): no answer within \(formatSeconds(timeout))")
        }
        return try body.outcome(url, errorBodies: errorBodies)
    }

    /// `body` when `status` is 2xx, or (with `errorBodies`) a 400/422/503 with a body.
    static func accepted(_ status: Int?, _ body: Data, _ url: URL, errorBodies: Bool) throws -> Data {
        if let status, !(200..<300).contains(status), !(errorBodies && [400, 422, 503].contains(status) && !body.isEmpty) {
            throw RatchetError("GET \(url.absoluteString): HTTP status \(status)")
        }
        return body
    }

    static func formatSeconds(_ seconds: TimeInterval) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}

/// The delegate that collects a body up to its limit and cancels the task past it.
private final class BoundedBody: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`; URLSession calls from its own queue.
    let limit: Int
    let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var data = Data()
    private var status: Int?
    private var failure: String?
    private var isTooLarge = false

    init(limit: Int) { self.limit = limit }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        lock.withLock { status = (response as? HTTPURLResponse)?.statusCode }
        if response.expectedContentLength > Int64(limit) {
            lock.withLock { isTooLarge = true }
            completionHandler(.cancel)
        } else {
            completionHandler(.allow)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive chunk: Data) {
        let over = lock.withLock { () -> Bool in
            guard !isTooLarge else { return true }
            if data.count + chunk.count > limit { isTooLarge = true; data = Data(); return true }
            data.append(chunk)
            return false
        }
        if over { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.withLock { if let error { failure = error.localizedDescription } }
        done.signal()
    }

    func outcome(_ url: URL, errorBodies: Bool) throws -> Data {
        try lock.withLock {
            if isTooLarge { throw RatchetError("GET \(url.absoluteString): answer larger than \(limit) bytes") }
            if let failure { throw RatchetError("GET \(url.absoluteString): \(failure)") }
            return try MetricsHTTP.accepted(status, data, url, errorBodies: errorBodies)
        }
    }
}
