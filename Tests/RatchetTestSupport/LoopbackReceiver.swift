import Foundation

/// A webhook receiver on loopback (Python's http.server): answers 500 to the first `failures`
/// posts, then 200, and appends every body as one line to a file. Stopped by `stop()`.
/// With `tls`, it serves https with a fresh self-signed certificate for 127.0.0.1, whose
/// PEM file is `certificate` (for the client to trust).
public final class LoopbackReceiver {
    let process = Process()
    public let port: Int
    let bodies: String
    /// The certificate to trust, when serving https.
    public let certificate: String?

    public init(_ folder: ScratchFolder, failures: Int, tls: Bool = false) throws {
        bodies = folder("bodies.txt")
        certificate = tls ? folder("receiver-cert.pem") : nil
        if let certificate { try makeCertificate(certificate, key: folder("receiver-key.pem"), in: folder) }
        let script = """
            import http.server, sys
            failures, out, seen = int(sys.argv[1]), sys.argv[2], [0]
            class Hook(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    seen[0] += 1
                    with open(out, 'ab') as f: f.write(body + b'\\n')
                    self.send_response(500 if seen[0] <= failures else 200)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                def log_message(self, *args): pass
            server = http.server.HTTPServer(('127.0.0.1', 0), Hook)
            if len(sys.argv) > 3:
                import ssl
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(sys.argv[3], sys.argv[4])
                server.socket = context.wrap_socket(server.socket, server_side=True)
            print(server.server_port, flush=True)
            server.serve_forever()
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, "\(failures)", bodies] + (certificate.map { [$0, folder("receiver-key.pem")] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // The port line is printed once the socket listens: reading it is the synchronisation.
        port = Int(try firstLine(of: output)) ?? 0
    }

    /// Every body received, one per line.
    public func received() -> [String] { lines(of: bodies) }

    /// Kills it and waits.
    public func stop() { stopServer(process) }
}

/// Every line of `file`, none when it does not exist yet.
func lines(of file: String) -> [String] {
    ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

/// Kills a test server (SIGKILL: the child may inherit a mask that blocks SIGTERM) and waits.
func stopServer(_ process: Process) {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
}

/// The first line a child process writes to `pipe`, without its newline; blocks until it is
/// written (a server that prints its port once it listens: reading it is the synchronisation).
public func firstLine(of pipe: Pipe) throws -> String {
    var line = Data()
    while let byte = try pipe.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line += byte }
    return String(decoding: line, as: UTF8.self)
}

/// A throwaway self-signed certificate for 127.0.0.1 (`openssl req`), valid for a day.
public func makeCertificate(_ certificate: String, key: String, in folder: ScratchFolder) throws {
    let made = try run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate], in: folder.path)
    guard made.status == 0 else { throw TestFailure("openssl req failed: \(made.stderr)") }
}
