import CPosix
import Foundation
import RatchetGit

/// Generates and caches the benchmark repositories with `git fast-import`.
enum Generator {
    /// A repository shape: commits of history and files in the tree.
    struct Shape: Hashable, CustomStringConvertible {
        var commits: Int
        var files: Int
        var description: String { "\(Format.count(commits)) commits / \(Format.count(files)) files" }
        var key: String { "repo-\(commits)c-\(files)f" }
    }

    /// The path of a file of the generated tree: 100 files per folder, folders of 10.
    static func path(_ index: Int) -> String {
        String(format: "src/m%02d/d%03d/f%05d.txt", index / 1000, (index / 100) % 1000, index)
    }

    /// Makes (or reuses from `cache`) a repository of `shape` and returns its path.
    static func repository(_ shape: Shape, cache: String) throws -> String {
        let folder = cache + "/" + shape.key
        if FileManager.default.fileExists(atPath: folder + "/.git/ratchet-bench-complete") { return folder }
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Shell.git(["init", "-q", "-b", "main"], in: folder)
        let stream = FileManager.default.temporaryDirectory.appendingPathComponent("fast-import-\(shape.key)").path
        FileManager.default.createFile(atPath: stream, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: stream))
        var buffer = ""
        func flush(_ force: Bool = false) {
            if force || buffer.utf8.count > 1 << 20 { handle.write(Data(buffer.utf8)); buffer = "" }
        }
        func blob(_ text: String) { buffer += "data \(text.utf8.count)\n\(text)\n" }
        var time = 1_600_000_000
        // The first commit adds every file; each later commit changes one to three files.
        buffer += "commit refs/heads/main\ncommitter Bench <bench@example.invalid> \(time) +0000\n"
        blob("initial tree")
        for index in 0..<shape.files {
            buffer += "M 100644 inline \(path(index))\n"
            blob((0..<8).map { "line \($0) of file \(index)" }.joined(separator: "\n") + "\n")
            flush()
        }
        var state = UInt64(42)
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for commit in 1..<shape.commits {
            time += 60
            buffer += "commit refs/heads/main\ncommitter Bench <bench@example.invalid> \(time) +0000\n"
            blob("change \(commit)")
            for _ in 0...next(3) {
                let file = next(shape.files)
                buffer += "M 100644 inline \(path(file))\n"
                blob((0..<8).map { "line \($0) of file \(file) at \(commit)" }.joined(separator: "\n") + "\n")
            }
            flush()
        }
        flush(true)
        try handle.close()
        try Shell.run(["/bin/sh", "-c", "git fast-import --quiet < '\(stream)'"], in: folder)
        try? FileManager.default.removeItem(atPath: stream)
        try Shell.git(["repack", "-adq"], in: folder)
        FileManager.default.createFile(atPath: folder + "/.git/ratchet-bench-complete", contents: Data())
        return folder
    }

    /// A private copy of a cached repository for one measurement.
    static func copy(_ source: String, to destination: String) throws {
        try? FileManager.default.removeItem(atPath: destination)
        try Shell.run(["cp", "-a", source, destination], in: "/")
        // As `ratchet service add` does: writing a loose object never pays for a mkdir.
        try Repository.open(destination).prepareObjectFolders()
    }
}

/// Child processes for the git CLI baseline and set-up.
enum Shell {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Runs a child with posix_spawn and waits with waitpid: Foundation's Process polls and
    /// would add tens of milliseconds to every git call of the baseline.
    @discardableResult
    static func run(_ arguments: [String], in directory: String, input: Data? = nil, environment: [String: String] = [:]) throws -> String {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        var output: [Int32] = [0, 0], inputPipe: [Int32] = [0, 0]
        guard ratchet_pipe_cloexec(&output) == 0, input == nil || ratchet_pipe_cloexec(&inputPipe) == 0 else {
            throw Failure(description: "pipe failed")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil { posix_spawn_file_actions_adddup2(&actions, inputPipe[0], 0) }
        else { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        ratchet_spawn_addchdir(&actions, directory)
        let argv = (arguments[0].hasPrefix("/") ? arguments : ["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0]!, &actions, nil, argv, envp)
        close(output[1])
        if input != nil { close(inputPipe[0]) }
        guard rc == 0 else { close(output[0]); throw Failure(description: "spawn \(arguments[0]) failed: \(rc)") }
        if let input {
            input.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(inputPipe[1], bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
            close(inputPipe[1])
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(output[0], &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            data.append(buffer, count: count)
        }
        close(output[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) exited with status \(status >> 8)") }
        return trimmedLines(data)
    }

    /// The output without leading and trailing line breaks, trimmed as bytes: Foundation's
    /// `trimmingCharacters(in: .newlines)` walks the whole string, 24 ms for `ticket list`'s
    /// 318 KB over 10,000 tickets, which the read-command figures then counted as the command's.
    static func trimmedLines(_ data: Data) -> String {
        let isBreak = { (byte: UInt8) in byte == 0x0A || byte == 0x0D }
        let start = data.firstIndex { !isBreak($0) } ?? data.endIndex
        let end = data.lastIndex { !isBreak($0) }.map { data.index(after: $0) } ?? start
        return String(decoding: data[start..<max(start, end)], as: UTF8.self)
    }

    @discardableResult
    static func git(_ arguments: [String], in directory: String, input: Data? = nil, config: [String] = []) throws -> String {
        try run(["git"] + config.flatMap { ["-c", $0] } + arguments, in: directory, input: input,
                environment: ["GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                              "GIT_COMMITTER_NAME": "Ratchet", "GIT_COMMITTER_EMAIL": "ratchet@ratchet.invalid"])
    }
}
