import Foundation
import RatchetStore
#if canImport(Glibc)
import Glibc
#endif

/// The tool socket's protocol (docs/formats.md, "Tool socket"): one request per connection,
/// one JSON line each way. The request names the tool and gives either `arguments` (an
/// object, as MCP does) or `argv` (the words of `ratchet tool NAME …`), and the trajectory
/// the caller believes it acts for; the answer is a `ToolObservation`.
public struct ToolRequest: Codable, Sendable {
    public var tool: String
    public var arguments: JSONValue?
    public var argv: [String]?
    public var trajectory: String?
    public init(tool: String, arguments: JSONValue? = nil, argv: [String]? = nil, trajectory: String? = nil) {
        self.tool = tool; self.arguments = arguments; self.argv = argv; self.trajectory = trajectory
    }

    /// The largest request the server reads.
    static let maximumBytes = 1 << 20
}

/// Serves an attempt's tools on a Unix socket while its agent runs. Calls are handled one
/// at a time on the server's own thread; `stop` waits for the call in progress.
public final class ToolServer: @unchecked Sendable {
    public let path: String
    let tools: AttemptTools
    private let listener: Int32

    /// Where the socket appears inside an agent's sandbox (bound read-only; connecting needs no write).
    public static let sandboxPath = "/run/ratchet/tools.sock"

    /// The folder of the running `ratchet` binary (put first on an agent's `PATH`).
    static let binaryFolder: String? = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        .map { ($0 as NSString).deletingLastPathComponent }
    private let stopped = DispatchSemaphore(value: 0)

    /// Binds `path` (mode 0600; a leftover socket file is replaced) and starts serving.
    init(path: String, tools: AttemptTools) throws {
        self.path = path
        self.tools = tools
        unlink(path)
        listener = try UnixSocket.make()
        do {
            try UnixSocket.withAddress(path) { address, length in
                guard bind(listener, address, length) == 0 else { throw UnixSocket.error("cannot bind the tool socket \(path)") }
            }
            guard chmod(path, 0o600) == 0, listen(listener, 16) == 0 else { throw UnixSocket.error("cannot listen on \(path)") }
        } catch {
            close(listener)
            throw error
        }
        let thread = Thread { [self] in serve() }
        thread.name = "ratchet-tools"
        thread.start()
    }

    /// Stops accepting, waits for the call in progress, removes the socket file.
    public func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        stopped.wait()
        close(listener)
        unlink(path)
    }

    private func serve() {
        defer { stopped.signal() }
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            handle(connection)
            close(connection)
        }
    }

    /// Reads one request (10 s to send it), performs it, answers. A client that went away
    /// still has its call performed and recorded; the answer is dropped.
    private func handle(_ connection: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let observation: ToolObservation
        switch UnixSocket.readLine(connection, limit: ToolRequest.maximumBytes) {
        case .failure(let error):
            observation = tools.call(name: "(unreadable request)", arguments: .object([:]), refusal: describe(error))
        case .success(let line):
            observation = respond(to: line)
        }
        var answer = (try? RatchetJSON.encoder(pretty: false).encode(observation)) ?? Data("{\"ok\":false}".utf8)
        answer.append(0x0A)
        _ = answer.withUnsafeBytes { UnixSocket.sendAll(connection, $0) }
    }

    private func respond(to line: Data) -> ToolObservation {
        guard let request = try? RatchetJSON.decoder().decode(ToolRequest.self, from: line) else {
            return tools.call(name: "(malformed request)", arguments: .object([:]), refusal: "the request is not a JSON tool request")
        }
        if let trajectory = request.trajectory, trajectory != tools.attempt.trajectoryId {
            return tools.call(name: request.tool, arguments: .object([:]),
                              refusal: "this socket serves trajectory \(tools.attempt.trajectoryId), not '\(AttemptTools.safeToolName(trajectory))'")
        }
        if let argv = request.argv {
            guard let tool = ToolCatalog.definition(request.tool) else { return tools.call(name: request.tool, arguments: .object([:])) }
            do {
                return tools.call(name: request.tool, arguments: try ToolCatalog.arguments(for: tool, argv: argv))
            } catch {
                return tools.call(name: request.tool, arguments: .object(["argv": .array(argv.map { .string($0) })]), refusal: describe(error))
            }
        }
        return tools.call(name: request.tool, arguments: request.arguments ?? .object([:]))
    }
}

/// The client side: what `ratchet tool` and `ratchet mcp` use. Opens nothing of the
/// workspace, so that a call costs a process start and one round trip.
public enum ToolClient {
    /// Sends `request` to the socket at `path` and returns the observation.
    public static func call(_ request: ToolRequest, socket path: String) throws -> ToolObservation {
        let fd = try UnixSocket.make()
        defer { close(fd) }
        try UnixSocket.withAddress(path) { address, length in
            guard connect(fd, address, length) == 0 else {
                throw UnixSocket.error("cannot reach the attempt's tool socket \(Names.printable(path)) (RATCHET_SOCKET)")
            }
        }
        var data = try RatchetJSON.encoder(pretty: false).encode(request)
        data.append(0x0A)
        guard data.withUnsafeBytes({ UnixSocket.sendAll(fd, $0) }) else { throw UnixSocket.error("the tool socket closed the connection") }
        shutdown(fd, Int32(SHUT_WR))
        switch UnixSocket.readLine(fd, limit: 256 << 20) {
        case .failure(let error): throw error
        case .success(let line):
            guard let observation = try? RatchetJSON.decoder().decode(ToolObservation.self, from: line) else {
                throw RatchetError("the tool socket \(Names.printable(path)) answered something that is not a tool observation")
            }
            return observation
        }
    }
}

/// Unix stream sockets: the few calls both sides need.
enum UnixSocket {
    static func make() throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw error("cannot make a socket") }
        return fd
    }

    static func error(_ what: String) -> RatchetError { RatchetError("\(what): \(String(cString: strerror(errno)))") }

    /// Calls `body` with the `sockaddr_un` of `path`; paths longer than `sun_path` are refused.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) throws -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw RatchetError("the socket path '\(Names.printable(path))' is empty or longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        return try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Reads up to the first newline or the end; more than `limit` bytes is an error.
    static func readLine(_ fd: Int32, limit: Int) -> Result<Data, RatchetError> {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(error("cannot read the tool request"))
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[..<count])
            if let newline = data.firstIndex(of: 0x0A) { return .success(data[..<newline]) }
            if data.count > limit { return .failure(RatchetError("the message is longer than \(limit) bytes")) }
        }
        return data.isEmpty ? .failure(RatchetError("the other side closed the connection without a message")) : .success(data)
    }

    /// Writes everything, never raising SIGPIPE; false when the peer went away.
    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if sent < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += sent
        }
        return true
    }
}
