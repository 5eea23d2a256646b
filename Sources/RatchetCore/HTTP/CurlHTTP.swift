import Foundation

/// `https` through the curl command-line tool in a child process (adr/0073), so that the
/// `ratchet` binary links no libcurl and every process start is spared libcurl's 20
/// libraries. Ratchet keeps the bounds: curl gets `--max-time` and `--max-filesize` (an
/// announced length over the limit is refused before the body), and its stdout, the body, is
/// read through `ProcessRunner` with Ratchet's own byte limit, curl killed past it, so the
/// bound holds for an answer without a length. `-q` first (no `~/.curlrc`), https only (no
/// redirect, no other protocol). The URL, headers and body go to curl on stdin as a config
/// file, never on its command line (a webhook's URL is its secret; `ps` shows arguments).
/// Trust is curl's own: the system's CA bundle, or the file its environment names
/// (`CURL_CA_BUNDLE`, `SSL_CERT_FILE`, `SSL_CERT_DIR`), which Ratchet passes on with the
/// proxy variables and nothing else.
enum CurlHTTP {
    struct Request {
        var method: String
        var url: URL
        var headers: [String]
        var body: Data?
        var timeout: TimeInterval
        var maxBytes: Int
        /// Whether the answer's body is thrown away by curl (a webhook's answer is not read).
        var discardsBody = false
    }

    /// What curl is given of Ratchet's environment.
    static let passedEnvironment = ["CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "https_proxy", "HTTPS_PROXY",
                                    "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"]

    /// The marker of the status line curl writes to its stderr once the exchange ends.
    static let statusMarker = "ratchet-http-status "

    /// One exchange: the answer with any status, or `HTTPClient`'s error line.
    static func exchange(_ request: Request, environment: [String: String]) throws -> HTTPAnswer {
        let curl = try executable(environment, request)
        let body = request.discardsBody ? ["--output", "/dev/null"] : ["--max-filesize", String(request.maxBytes), "--output", "-"]
        let arguments = [curl, "-q", "--config", "-", "--silent", "--show-error", "--proto", "=https", "--max-redirs", "0",
                         "--max-time", String(format: "%.3f", request.timeout)] + body
            + ["--write-out", "%{stderr}\(statusMarker)%{http_code}\\n"]
        let result = try withConfig(config(request)) { input in
            try ProcessRunner.run(arguments, directory: "/", environment: environment.filter { passedEnvironment.contains($0.key) },
                                  limits: ProcessLimits(timeout: request.timeout + 2, outputBytes: request.maxBytes, errorOutputBytes: 16 << 10,
                                                        killsOnOutputOverflow: true),
                                  input: input)
        }
        return try answer(result, request)
    }

    /// The answer curl reported, or why there was none, in the error style of the http paths.
    static func answer(_ result: ProcessResult, _ request: Request) throws -> HTTPAnswer {
        func fail(_ reason: String) -> RatchetError { HTTPClient.failure(request.method, request.url, reason) }
        if result.isTruncated || result.exitStatus == 63 { throw fail("answer larger than \(request.maxBytes) bytes") }
        if result.timedOut || result.exitStatus == 28 { throw fail("no answer within \(HTTPClient.formatSeconds(request.timeout))") }
        let lines = result.errorOutput.split(separator: "\n").map(String.init)
        let status = lines.last { $0.hasPrefix(statusMarker) }.flatMap { Int($0.dropFirst(statusMarker.count)) } ?? 0
        guard result.exitStatus == 0, status > 0 else {
            // `curl: (7) Failed to connect to …`: the text after the exit code's parenthesis.
            let said = lines.first { !$0.hasPrefix(statusMarker) && !$0.isEmpty }.map { line in
                line.range(of: ") ").map { String(line[$0.upperBound...]) } ?? line
            }
            let message = said.map { Names.escapedForTerminal($0) } ?? "curl \(result.summary)"
            throw fail([6, 7].contains(result.exitStatus) ? "cannot connect: \(message)" : message)
        }
        return HTTPAnswer(status: status, body: result.outputData)
    }

    /// curl on `PATH`, or a clear error naming its package.
    static func executable(_ environment: [String: String], _ request: Request) throws -> String {
        let folders = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        guard let found = folders.map({ $0 + "/curl" }).first(where: { $0.hasPrefix("/") && FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw HTTPClient.failure(request.method, request.url,
                                     "https needs the curl command-line tool, which is not on PATH (Debian package curl)")
        }
        return found
    }

    /// curl's config file (`--config -`, its documented syntax): the URL, method, headers, body.
    static func config(_ request: Request) -> Data {
        var lines = ["url = \(quoted(request.url.absoluteString))", "request = \(quoted(request.method))"]
        lines += request.headers.map { "header = \(quoted($0))" }
        if let body = request.body { lines.append("data-raw = \(quoted(String(decoding: body, as: UTF8.self)))") }
        return Data((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// A double-quoted config value: `\`, `"` and line breaks escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(character)
            }
        }
        return out + "\""
    }

    /// Runs `body` with one end of a socket pair as the child's stdin, `config` sent into the
    /// other by a thread of its own (a config larger than the buffer must not block the start;
    /// `MSG_NOSIGNAL`: a child gone early fails the send instead of raising SIGPIPE).
    private static func withConfig(_ config: Data, _ body: (Int32) throws -> ProcessResult) throws -> ProcessResult {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw RatchetError("socketpair: \(String(cString: strerror(errno)))")
        }
        let (childEnd, ownEnd) = (fds[0], fds[1])
        let sent = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            config.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let count = send(ownEnd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    offset += count
                }
            }
            shutdown(ownEnd, Int32(SHUT_WR))
            sent.signal()
        }
        defer {
            // The child has exited (or never started): closing its end ends the sender's wait.
            close(childEnd)
            sent.wait()
            close(ownEnd)
        }
        return try body(childEnd)
    }
}
