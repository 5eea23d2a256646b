import Foundation

/// A minimal HTTP/1.1 POST over a plain socket (http:// webhooks; https goes through
/// `CurlHTTP`): connect with a timeout, send, read the status line.
enum HTTPPost {
    /// Posts `body` to `url` and returns the answer's status (`HTTPClient`'s error line otherwise).
    static func post(_ body: Data, to url: URL, timeout: Double) throws -> Int {
        switch status(posting: body, to: url, timeout: timeout) {
        case .success(let status): return status
        case .failure(let reason): throw HTTPClient.failure("POST", url, reason.text)
        }
    }

    private struct Reason: Error { let text: String }

    private static func status(posting body: Data, to url: URL, timeout: Double) -> Result<Int, Reason> {
        func fail(_ text: String) -> Result<Int, Reason> { .failure(Reason(text: text)) }
        guard let host = url.host else { return fail("no host") }
        let port = url.port ?? 80
        var hints = addrinfo(ai_flags: 0, ai_family: AF_UNSPEC, ai_socktype: Int32(SOCK_STREAM.rawValue), ai_protocol: 0,
                             ai_addrlen: 0, ai_addr: nil, ai_canonname: nil, ai_next: nil)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, "\(port)", &hints, &list) == 0, let address = list else { return fail("cannot resolve \(host)") }
        defer { freeaddrinfo(list) }
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard fd >= 0 else { return fail("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            return fail("cannot connect: \(String(cString: strerror(errno)))")
        }
        let path = url.path.isEmpty ? "/" : url.path + (url.query.map { "?\($0)" } ?? "")
        let head = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let request = Data(head.utf8) + body
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return fail("send: \(String(cString: strerror(errno)))") }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return fail("no answer: \(count == 0 ? "connection closed" : String(cString: strerror(errno)))") }
        let status = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ").dropFirst().first.flatMap { Int($0) }
        guard let status else { return fail("not an HTTP answer") }
        return .success(status)
    }
}
