import Foundation

/// An https server on loopback (Python's http.server in `ssl`) with a fresh self-signed
/// certificate, `certificate` (for the client to trust, e.g. as `CURL_CA_BUNDLE`). Paths:
/// `GET /page` 200 with a short metrics page, `GET /endless` 200 without a length and without
/// end, `GET /big` 200 announcing 1 GiB, `GET /fail` 500 with a body, `POST /hook` 200 and the
/// body appended as one line to `posts`. Stopped by `stop()`.
public final class HTTPSServer {
    let process = Process()
    public let port: Int
    public let certificate: String
    let posts: String

    /// The page `GET /page` answers.
    public static let page = "kvcache_hits_total 7\n"

    public init(_ folder: ScratchFolder) throws {
        certificate = folder("https-cert.pem")
        posts = folder("https-posts.txt")
        try makeCertificate(certificate, key: folder("https-key.pem"), in: folder)
        let script = """
            import http.server, ssl, sys
            page, out = sys.argv[1].encode(), sys.argv[2]
            class Handler(http.server.BaseHTTPRequestHandler):
                def answer(self, status, body, length=None):
                    self.send_response(status)
                    self.send_header('Content-Type', 'text/plain')
                    self.send_header('Content-Length', str(len(body) if length is None else length))
                    self.end_headers()
                    self.wfile.write(body)
                def do_GET(self):
                    if self.path == '/page': return self.answer(200, page)
                    if self.path == '/fail': return self.answer(500, b'boom')
                    if self.path == '/big': return self.answer(200, b'x' * 1024, length=1 << 30)
                    if self.path != '/endless': return self.answer(404, b'')
                    self.send_response(200)
                    self.end_headers()
                    chunk = b'kvcache_hits_total 1\\n' * 50000
                    try:
                        while True: self.wfile.write(chunk)
                    except Exception: pass
                def do_POST(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    with open(out, 'ab') as f: f.write(body + b'\\n')
                    self.answer(200, b'')
                def log_message(self, *args): pass
            class Server(http.server.ThreadingHTTPServer):
                daemon_threads = True
                def get_request(self):
                    sock, address = self.socket.accept()
                    return context.wrap_socket(sock, server_side=True), address
                def handle_error(self, request, address): pass
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[3], sys.argv[4])
            server = Server(('127.0.0.1', 0), Handler)
            print(server.server_port, flush=True)
            server.serve_forever()
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, Self.page, posts, certificate, folder("https-key.pem")]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // The port line is printed once the socket listens: reading it is the synchronisation.
        port = Int(try firstLine(of: output)) ?? 0
    }

    /// `https://127.0.0.1:PORT` + `path`.
    public func url(_ path: String) -> String { "https://127.0.0.1:\(port)\(path)" }

    /// Every body posted, one per line.
    public func posted() -> [String] { lines(of: posts) }

    /// Kills it and waits.
    public func stop() { stopServer(process) }
}
