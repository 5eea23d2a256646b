import Foundation

/// Containment with bubblewrap (adr/0013, docs/security.md).
///
/// The sandbox holds even when Ratchet runs as root: a user namespace with an unprivileged
/// uid inside, no capabilities, no further user namespaces, a new session, its own pid,
/// ipc, uts and (unless `network` is host) network namespaces. Only an allow-list of paths
/// is mounted: the system folders a toolchain needs read-only, the mounts of the profile
/// (an attempt's worktree, or a verification checkout) and a private `/tmp` and `HOME`.
/// The store, other services, other worktrees and the caller's `HOME` are never visible.
public struct Sandbox: Sendable {
    /// One path bound into the sandbox.
    public struct Mount: Sendable, Equatable {
        /// The host path.
        public var source: String
        /// Where it appears inside.
        public var destination: String
        /// Whether the sandbox may write it.
        public var isWritable: Bool
        /// Whether the sandbox writes into its own layer over `source` (overlayfs with an
        /// in-memory upper layer that vanishes with the run), `source` itself never changing.
        public var isOverlay = false
        public init(_ source: String, at destination: String? = nil, writable: Bool = false) {
            self.source = source
            self.destination = destination ?? source
            self.isWritable = writable
        }

        /// `source` at `destination`, writable in a layer of the run's own.
        public static func overlay(_ source: String, at destination: String) -> Mount {
            var mount = Mount(source, at: destination, writable: true)
            mount.isOverlay = true
            return mount
        }
    }

    /// The uid and gid the sandboxed processes have inside their user namespace.
    public static let innerID = 1000
    /// `HOME` inside the sandbox (a private writable folder).
    public static let home = "/home/ratchet"
    /// Where a verification checkout appears inside (the same for every run, so that the
    /// two canary runs cannot be told apart by their paths).
    public static let checkoutPath = "/srv/checkout"

    /// The bubblewrap executable; `$RATCHET_BUBBLEWRAP` overrides the search (tests use it to
    /// simulate a machine without bubblewrap).
    public static func bubblewrap(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let path = environment["RATCHET_BUBBLEWRAP"] { return FileManager.default.isExecutableFile(atPath: path) ? path : nil }
        return ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The bubblewrap executable.
    public let executable: String
    /// The profile's own mounts, in order (later ones cover earlier ones).
    public var mounts: [Mount]
    /// Whether the sandbox shares the host's network; otherwise it has only its own loopback.
    public var hasNetwork: Bool
    /// A host folder Ratchet owns for this run: its `tmp/` and `home/` become `/tmp` and `HOME`.
    public let privateFolder: String
    /// The working directory inside.
    public var workingDirectory: String
    /// Whether the sandbox outlives its command while processes it started run (a deployed
    /// instance, `Deploy.swift`): no `--die-with-parent`; the namespace's pid 1 (`--as-pid-1`)
    /// is the thin client's `sandbox-init` (adr/0077), which alone holds the stdout it was
    /// given, writes the command's status there (`statusPrefix`), then stays while anything
    /// else runs in the sandbox's pid namespace. It is non-dumpable, so nothing the command
    /// starts can open that pipe through `/proc` and forge the status. The sandbox ends when
    /// the last such process does, or when Ratchet kills it (the next deploy).
    public var isPersistent = false
    /// Whether the command's stdin and stdout are held by the command alone (a canary module,
    /// whose stdout is the verdict's evidence and whose children run branch code): the wrapper
    /// is the namespace's pid 1 (`--as-pid-1`: no bubblewrap init holding them) and hands
    /// both to the command, then lets go of its own. With a module that makes itself
    /// non-dumpable, no other process of the sandbox can open them through `/proc`
    /// (docs/canary.md, "Who can write the evidence").
    public var guardsStreams = false

    /// A sandbox for one run; creates the private `tmp/` and `home/` folders.
    public init(executable: String, mounts: [Mount], network: Bool, privateFolder: String, workingDirectory: String) throws {
        self.executable = executable
        self.mounts = mounts
        self.hasNetwork = network
        self.privateFolder = privateFolder
        self.workingDirectory = workingDirectory
        for folder in ["tmp", "home", "overlay"] {
            try FileManager.default.createDirectory(atPath: privateFolder + "/" + folder, withIntermediateDirectories: true)
        }
    }

    /// The environment every sandboxed process gets for `HOME` and `TMPDIR`.
    public static let fixedEnvironment = ["HOME": home, "TMPDIR": "/tmp"]

    /// The file the in-sandbox wrapper writes the number of processes left behind to.
    var leftoversFile: String { privateFolder + "/tmp/.ratchet-leftovers" }

    /// The argument vector that runs `argv` inside the sandbox.
    public func arguments(for argv: [String]) -> [String] {
        var arguments = overlayPrefix() + [executable] + (isPersistent ? [] : ["--die-with-parent"]) + (guardsStreams || isPersistent ? ["--as-pid-1"] : [])
            + ["--new-session", "--unshare-user", "--uid", "\(Self.innerID)",
                         "--gid", "\(Self.innerID)", "--disable-userns", "--cap-drop", "ALL",
                         "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if !hasNetwork { arguments.append("--unshare-net") }
        arguments += Self.systemMounts()
        arguments += ["--dev", "/dev", "--proc", "/proc", "--bind", privateFolder + "/tmp", "/tmp", "--bind", privateFolder + "/home", Self.home]
        for (index, mount) in mounts.enumerated() {
            let source = mount.isOverlay ? overlayFolder + "/m\(index)" : mount.source
            arguments += [mount.isWritable ? "--bind" : "--ro-bind", source, mount.destination]
        }
        arguments += ["--chdir", workingDirectory]
        // A persistent sandbox's pid 1 is the thin client's init: it alone holds the status pipe (adr/0077).
        if isPersistent { return arguments + ["--", Self.binaryFolder + "/ratchet", "sandbox-init", "--"] + argv }
        // After the command, count the processes it left in the namespace (pid 1 is bubblewrap's
        // init, $$ this shell); they die with the namespace when this shell exits. `1<>` opens
        // without blocking even when a process it left put a FIFO there.
        // With `guardsStreams` the command runs in the background with the wrapper's stdin
        // (an asynchronous command's own stdin would be /dev/null), and the wrapper then drops
        // its stdin and stdout, so that only the command holds them.
        let run = guardsStreams ? "exec 3<&0; \"$@\" <&3 3<&- & child=$!; exec 0</dev/null 1>/dev/null 3<&-; wait $child; status=$?"
                                : "\"$@\"; status=$?"
        let wrapper = """
            \(run)
            left=0
            for p in /proc/[0-9]*; do n=${p#/proc/}; [ "$n" = 1 ] || [ "$n" = $$ ] || left=$((left+1)); done
            rm -f /tmp/.ratchet-leftovers; echo $left 1<> /tmp/.ratchet-leftovers
            exit $status
            """
        return arguments + ["--", "/bin/sh", "-c", wrapper, "ratchet-sandbox"] + argv
    }

    /// The line a persistent sandbox's init (`ratchet sandbox-init`, Sources/ratchet-tool)
    /// writes with the command's exit status, the only line it writes on its stdout. The
    /// command's output goes to `/tmp/command.log`.
    public static let statusPrefix = "ratchet-sandbox-status "

    /// The most bytes a run's writable layers hold together (its tmpfs): a run that writes
    /// more gets ENOSPC rather than half the machine's memory, the kernel's default.
    static let overlayBytes = 2 << 30

    /// Where the overlays of a run are mounted (inside its own mount namespace only).
    var overlayFolder: String { privateFolder + "/overlay" }

    /// For overlay mounts: `unshare` into a private mount namespace (and, when not root, a
    /// user namespace mapping the caller to root there), mount a tmpfs and one overlay per
    /// such mount on it, then exec bubblewrap. The layers vanish with the namespace when
    /// the run ends. bubblewrap 0.8 has no `--overlay` of its own.
    func overlayPrefix() -> [String] {
        let overlays = mounts.enumerated().filter { $0.element.isOverlay }
        guard !overlays.isEmpty else { return [] }
        var script = "mount -t tmpfs -o mode=0755,size=\(Self.overlayBytes) ratchet-overlay \(Self.quoted(overlayFolder)) || exit 125\n"
        for (index, mount) in overlays {
            let (upper, work, merged) = (overlayFolder + "/u\(index)", overlayFolder + "/w\(index)", overlayFolder + "/m\(index)")
            let options = "lowerdir=\(Self.escapedForOverlay(mount.source)),upperdir=\(Self.escapedForOverlay(upper)),workdir=\(Self.escapedForOverlay(work))"
            script += "mkdir \(Self.quoted(upper)) \(Self.quoted(work)) \(Self.quoted(merged)) && "
            script += "mount -t overlay overlay -o \(Self.quoted(options)) \(Self.quoted(merged)) || exit 125\n"
        }
        script += "exec \"$@\""
        let user = getuid() == 0 ? [] : ["--user", "--map-root-user"]
        return ["/usr/bin/unshare", "--mount", "--propagation", "private"] + user + ["--", "/bin/sh", "-c", script, "ratchet-overlay"]
    }

    /// A path inside overlayfs's mount options, where `,` and `:` separate and `\\` escapes.
    static func escapedForOverlay(_ path: String) -> String {
        path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ",", with: "\\,").replacingOccurrences(of: ":", with: "\\:")
    }

    /// `text` in single quotes for `/bin/sh`.
    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// How many processes the command left running (read after the run). The count is the
    /// wrapper's; an agent could overwrite it, but whatever it left dies with the namespace.
    public func leftoverCount() -> Int {
        defer { try? FileManager.default.removeItem(atPath: leftoversFile) }
        guard let data = Self.readUntrusted(leftoversFile, limit: 32) else { return 0 }
        return Int(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Reads a file from a folder a sandbox can write, as hostile input: never through a
    /// link, nothing but a regular file (a FIFO or device never blocks the open), and only
    /// its last `limit` bytes. Nil when there is no such file.
    public static func readUntrusted(_ path: String, limit: Int) -> Data? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        let size = Int(info.st_size), count = min(size, limit)
        var bytes = [UInt8](repeating: 0, count: count)
        let read = count == 0 ? 0 : pread(fd, &bytes, count, off_t(size - count))
        return read < 0 ? nil : Data(bytes[..<read])
    }

    /// Runs `argv` in the sandbox with `environment` (plus the fixed `HOME` and `TMPDIR`);
    /// processes it leaves behind make the result `leftProcesses`.
    /// `input` is the command's stdin (see `ProcessRunner.run`).
    public func run(_ argv: [String], environment: [String: String], limits: ProcessLimits, input: Int32? = nil,
                    onOutput: (@Sendable (Data) -> Void)? = nil, onStart: ((pid_t) -> Void)? = nil) throws -> ProcessResult {
        var contained = limits
        contained.checksProcessGroup = false
        var result = try ProcessRunner.run(arguments(for: argv), directory: privateFolder, environment: environment.merging(Self.fixedEnvironment) { $1 },
                                           limits: contained, input: input, onOutput: onOutput, onStart: onStart)
        if leftoverCount() > 0 && !result.timedOut { result.leftProcesses = true }
        return result
    }

    /// Read-only system folders: the allow-list a toolchain needs, never `/` as a whole
    /// (as root, everything visible is readable). Symbolic links such as `/bin -> usr/bin`
    /// are recreated as links.
    static func systemMounts() -> [String] {
        var arguments: [String] = []
        for folder in ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: folder) {
                arguments += ["--symlink", target, folder]
            } else if FileManager.default.fileExists(atPath: folder) {
                arguments += ["--ro-bind", folder, folder]
            }
        }
        for file in etcAllowList { arguments += ["--ro-bind", "/etc/" + file, "/etc/" + file] }
        for folder in runtimeFolders { arguments += ["--ro-bind", folder, folder] }
        return arguments + binaryMounts(ratchetBinary) + extraBinaryMounts()
    }

    /// Where the `ratchet` binary is inside every sandbox (first on an agent's PATH): a fixed
    /// path, because its own may lie under a folder the sandbox replaces (a clone in /tmp).
    public static let binaryFolder = "/run/ratchet/bin"

    /// Where the full binary is when the thin client stands in for it at `binaryFolder`.
    public static let libexecFolder = "/run/ratchet/libexec"

    /// `ratchet` inside: the thin client built beside the full binary (`ratchet-tool`, which
    /// answers `ratchet tool` in ~2 ms and hands every other command line to the full binary,
    /// adr/0042) with the full binary at `libexecFolder`; the full binary itself without one.
    /// `ratchet-mcp` (`ratchet mcp`, adr/0073), when built beside it, is bound beside the full
    /// binary, where both the full binary and the thin client find it.
    static func binaryMounts(_ binary: String?) -> [String] {
        guard let binary else { return [] }
        let mcp = (binary as NSString).deletingLastPathComponent + "/ratchet-mcp"
        let thin = thinClient(beside: binary)
        let fullFolder = thin == nil ? binaryFolder : libexecFolder
        var mounts = thin.map { ["--ro-bind", $0, binaryFolder + "/ratchet"] } ?? []
        mounts += ["--ro-bind", binary, fullFolder + "/ratchet"]
        if FileManager.default.isExecutableFile(atPath: mcp) { mounts += ["--ro-bind", mcp, fullFolder + "/ratchet-mcp"] }
        return mounts
    }

    /// The thin client built beside `binary`, nil when there is none.
    static func thinClient(beside binary: String?) -> String? {
        guard let binary else { return nil }
        let thin = (binary as NSString).deletingLastPathComponent + "/ratchet-tool"
        return FileManager.default.isExecutableFile(atPath: thin) ? thin : nil
    }

    /// Whether a persistent sandbox can start: its init is the thin client (`sandbox-init`).
    public static var hasInit: Bool { thinClient(beside: ratchetBinary) != nil }

    /// Further executables bound read-only into `binaryFolder` under their own names, from
    /// `$RATCHET_SANDBOX_BINARIES` (absolute paths, `:`-separated; others are ignored). Tests
    /// use it to run a test agent (Tests/ScriptedMCPAgent) inside the sandbox; it shows the
    /// sandbox nothing its caller could not already run, and never anything writable.
    static func extraBinaryMounts(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let paths = environment["RATCHET_SANDBOX_BINARIES"]?.split(separator: ":").map(String.init) ?? []
        return paths.filter { $0.hasPrefix("/") && FileManager.default.isExecutableFile(atPath: $0) }.flatMap {
            ["--ro-bind", $0, binaryFolder + "/" + ($0 as NSString).lastPathComponent]
        }
    }

    /// This process's own binary.
    static let ratchetBinary = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")

    /// What a toolchain reads from `/etc` (never `shadow`, `sudoers`, keys or credentials),
    /// as far as this machine has it (each mount costs about 0.2 ms per run).
    static let etcAllowList = etcCandidates.filter { FileManager.default.fileExists(atPath: "/etc/" + $0) }

    private static let etcCandidates = ["passwd", "group", "hosts", "host.conf", "resolv.conf", "nsswitch.conf", "gai.conf", "ld.so.cache",
                               "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "ssl/certs", "ca-certificates",
                               "ca-certificates.conf", "alternatives", "mime.types", "protocols", "services", "os-release",
                               "debian_version", "python3", "python3.11", "gitconfig", "inputrc", "terminfo"]

    /// The folders of the `ratchet` binary's shared libraries outside the system folders (the
    /// Swift runtime), so that `ratchet tool` works inside.
    static let runtimeFolders: [String] = {
        var folders: Set<String> = []
        // /proc files report size 0: read to the end rather than by the file's size.
        if let maps = FileHandle(forReadingAtPath: "/proc/self/maps").flatMap({ try? $0.readToEnd() }).map({ String(decoding: $0, as: UTF8.self) }) {
            for line in maps.split(separator: "\n") {
                guard let slash = line.firstIndex(of: "/") else { continue }
                let path = String(line[slash...])
                guard path.hasSuffix(".so") || path.contains(".so."), !isSystemPath(path) else { continue }
                folders.insert((path as NSString).deletingLastPathComponent)
            }
        }
        return folders.filter { !isSystemPath($0) && !$0.hasPrefix("/proc") }.sorted()
    }()

    private static func isSystemPath(_ path: String) -> Bool {
        ["/usr/", "/lib", "/bin/", "/sbin/", "/etc/"].contains { path.hasPrefix($0) }
    }
}

extension Workspace {
    /// The sandbox an agent works in: its worktree writable, the worktree's `.git` link and
    /// the service's `.git` read-only, the brief and `readOnly` read-only.
    func agentSandbox(executable: String, worktree: String, gitDirectory: String, readOnly: [String], network: Bool,
                      privateFolder: String) throws -> Sandbox {
        var mounts = [Sandbox.Mount(gitDirectory), Sandbox.Mount(worktree, writable: true), Sandbox.Mount(worktree + "/.git")]
        mounts += readOnly.map { Sandbox.Mount($0) }
        return try Sandbox(executable: executable, mounts: mounts, network: network, privateFolder: privateFolder, workingDirectory: worktree)
    }

    /// The sandbox branch code is verified in (acceptance commands, canary runs): `checkout`
    /// writable at the neutral `Sandbox.checkoutPath`, `readOnly` mounts beside it; nothing of
    /// the workspace or the service's `.git` is reachable.
    /// With `layered`, the run writes into an overlay of its own and `checkout` never changes
    /// (a pooled checkout, `CheckoutPool.swift`).
    public func verificationSandbox(checkout: String, layered: Bool = false, readOnly: [Sandbox.Mount] = [], network: Bool,
                                    privateFolder: String) throws -> Sandbox {
        guard let executable = Sandbox.bubblewrap() else {
            throw RatchetError("bubblewrap is not installed (Debian package bubblewrap); branch code never runs outside a sandbox")
        }
        let mount = layered ? Sandbox.Mount.overlay(checkout, at: Sandbox.checkoutPath) : Sandbox.Mount(checkout, at: Sandbox.checkoutPath, writable: true)
        return try Sandbox(executable: executable, mounts: [mount] + readOnly, network: network, privateFolder: privateFolder,
                           workingDirectory: Sandbox.checkoutPath)
    }
}
