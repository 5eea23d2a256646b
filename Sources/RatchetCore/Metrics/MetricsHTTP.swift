import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP GET with a hard deadline, for scrapes and Prometheus queries (URLSession; http and https).
enum MetricsHTTP {
    /// The body of a 2xx answer from `url`, or a `RatchetError` saying why not (timeout, refused,
    /// status, body over `maxBytes`). With `errorBodies`, a 400/422/503 answer's body is returned
    /// (Prometheus explains a refused query there). Returns within `timeout` seconds plus a second's grace.
    static func get(_ url: URL, timeout: TimeInterval, maxBytes: Int = 64 << 20, accept: String = "text/plain;version=0.0.4",
                    errorBodies: Bool = false) throws -> Data {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        let session = URLSession(configuration: configuration)
        defer { session.invalidateAndCancel() }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.setValue(accept, forHTTPHeaderField: "Accept")
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<Data, RatchetError>?
        let task = session.dataTask(with: request) { data, response, error in
            if let error {
                outcome = .failure(RatchetError("GET \(url.absoluteString): \(error.localizedDescription)"))
            } else if let status = (response as? HTTPURLResponse)?.statusCode, !(200..<300).contains(status),
                      !(errorBodies && [400, 422, 503].contains(status) && data?.isEmpty == false) {
                outcome = .failure(RatchetError("GET \(url.absoluteString): HTTP status \(status)"))
            } else {
                outcome = .success(data ?? Data())
            }
            done.signal()
        }
        task.resume()
        guard done.wait(timeout: .now() + timeout + 1) == .success, let outcome else {
            task.cancel()
            throw RatchetError("GET \(url.absoluteString): no answer within \(formatSeconds(timeout))")
        }
        let data = try outcome.get()
        guard data.count <= maxBytes else { throw RatchetError("GET \(url.absoluteString): answer larger than \(maxBytes) bytes") }
        return data
    }

    static func formatSeconds(_ seconds: TimeInterval) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
