import Foundation

/// One `http://` GET over a socket Ratchet reads itself, so that a target that answers without
/// end costs at most `maxBytes` of memory (adr/0072; `https` goes through `CurlHTTP`, adr/0073).
/// HTTP/1.0 with `Connection: close`: the answer is the bytes up to the end of the connection,
/// never chunked, never kept alive.
enum PlainHTTP {
    /// The most bytes of a status line and headers.
    static let headerBytes = 64 << 10

    /// Status and body of a GET of `url` (`http` only), within `timeout` seconds.
    static func get(_ url: URL, timeout: TimeInterval, maxBytes: Int, accept: String) throws -> (status: Int, body: Data) {
        do {
            return try get(url, deadline: Date().addingTimeInterval(timeout), maxBytes: maxBytes, accept: accept)
        } catch is TimedOut {
            throw RatchetError("GET \(url.absoluteString): no answer within \(HTTPClient.formatSeconds(timeout))")
        }
    }

    private struct TimedOut: Error {}

    private static func get(_ url: URL, deadline: Date, maxBytes: Int, accept: String) throws -> (status: Int, body: Data) {
        guard let host = url.host, !host.isEmpty else { throw RatchetError("GET \(url.absoluteString): no host") }
        let port = url.port ?? 80
        let socket = try connect(host: host, port: port, deadline: deadline, url: url)
        defer { close(socket) }
        var target = url.path.isEmpty ? "/" : URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? url.path
        if let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedQuery { target += "?" + query }
        let request = "GET \(target) HTTP/1.0\r\nHost: \(host):\(port)\r\nAccept: \(accept)\r\nUser-Agent: ratchet\r\nConnection: close\r\n\r\n"
        try send(Array(request.utf8), on: socket, deadline: deadline, url: url)
        let answer = try receive(on: socket, limit: maxBytes + headerBytes, deadline: deadline, url: url)
        return try parse(answer, maxBytes: maxBytes, url: url)
    }

    private static func connect(host: String, port: Int, deadline: Date, url: URL) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw RatchetError("GET \(url.absoluteString): cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var lastError = ECONNREFUSED
        for address in sequence(first: first, next: { $0.pointee.ai_next }) {
            let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = errno; continue }
            if Glibc.connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return fd }
            if errno == EINPROGRESS, wait(fd, for: POLLOUT, until: deadline) {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0 { return fd }
                lastError = error
            } else {
                lastError = errno == EINPROGRESS ? ETIMEDOUT : errno
            }
            close(fd)
        }
        if lastError == ETIMEDOUT { throw TimedOut() }
        throw RatchetError("GET \(url.absoluteString): cannot connect: \(String(cString: strerror(lastError)))")
    }

    private static func send(_ bytes: [UInt8], on fd: Int32, deadline: Date, url: URL) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written > 0 { offset += written; continue }
            guard written < 0, errno == EAGAIN || errno == EINTR else {
                throw RatchetError("GET \(url.absoluteString): cannot send: \(String(cString: strerror(errno)))")
            }
            guard wait(fd, for: POLLOUT, until: deadline) else { throw TimedOut() }
        }
    }

    /// The bytes up to the end of the connection; past `limit`, the answer is refused at once.
    private static func receive(on fd: Int32, limit: Int, deadline: Date, url: URL) throws -> Data {
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count == 0 { return answer }
            if count > 0 {
                guard answer.count + count <= limit else { throw RatchetError("GET \(url.absoluteString): answer larger than \(limit - headerBytes) bytes") }
                answer.append(contentsOf: buffer[..<count])
                continue
            }
            guard errno == EAGAIN || errno == EINTR else {
                throw RatchetError("GET \(url.absoluteString): cannot read: \(String(cString: strerror(errno)))")
            }
            guard wait(fd, for: POLLIN, until: deadline) else { throw TimedOut() }
        }
    }

    private static func parse(_ answer: Data, maxBytes: Int, url: URL) throws -> (status: Int, body: Data) {
        guard let end = answer.firstRange(of: Data("\r\n\r\n".utf8)), end.lowerBound <= headerBytes else {
            throw RatchetError("GET \(url.absoluteString): not an HTTP answer")
        }
        let head = String(decoding: answer[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = head[0].split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else {
            throw RatchetError("GET \(url.absoluteString): not an HTTP answer")
        }
        let body = Data(answer[end.upperBound...])
        guard body.count <= maxBytes else { throw RatchetError("GET \(url.absoluteString): answer larger than \(maxBytes) bytes") }
        for line in head.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            if parts.count == 2, parts[0] == "transfer-encoding", parts[1] != "identity" {
                throw RatchetError("GET \(url.absoluteString): a \(parts[1]) answer to an HTTP/1.0 request")
            }
            if parts.count == 2, parts[0] == "content-length", let length = Int(parts[1]), length != body.count {
                throw RatchetError("GET \(url.absoluteString): the answer ended after \(body.count) of \(length) bytes")
            }
        }
        return (status, body)
    }

    private static func wait(_ fd: Int32, for events: Int32, until deadline: Date) -> Bool {
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return false }
            var poller = pollfd(fd: fd, events: Int16(events), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000, 60_000)) + 1)
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }
}
