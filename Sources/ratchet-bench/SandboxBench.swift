import Foundation
import RatchetCore

/// What one sandboxed run costs (adr/0013): `/bin/true` unsandboxed, under adr/0010's
/// bubblewrap (`/` read-only, root inside) and under today's (a user namespace, no
/// capabilities, an allow-list of mounts). Every agent run, acceptance command and canary
/// run pays it once.
enum SandboxBench {
    /// One bare start of the sandbox as adr/0013 builds it (`/bin/true` in it), to run between
    /// other measurements; nil without bubblewrap.
    static func bareStart(scratch: String) throws -> (() throws -> Void)? {
        guard let bwrap = Sandbox.bubblewrap() else { return nil }
        let folder = scratch + "/bare-sandbox"
        try FileManager.default.createDirectory(atPath: folder + "/checkout", withIntermediateDirectories: true)
        let sandbox = try Sandbox(executable: bwrap, mounts: [Sandbox.Mount(folder + "/checkout", at: Sandbox.checkoutPath, writable: true)],
                                  network: false, privateFolder: folder + "/private", workingDirectory: Sandbox.checkoutPath)
        let limits = ProcessLimits(timeout: 30, outputBytes: 4096)
        return { _ = try sandbox.run(["/bin/true"], environment: ["PATH": "/usr/bin:/bin"], limits: limits) }
    }

    static func measure(runs: Int, scratch: String) throws -> [Figure] {
        guard let bwrap = Sandbox.bubblewrap() else { return [] }
        let folder = scratch + "/sandbox"
        try FileManager.default.createDirectory(atPath: folder + "/checkout", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let limits = ProcessLimits(timeout: 30, outputBytes: 4096)
        let environment = ["PATH": "/usr/bin:/bin"]
        let sandbox = try Sandbox(executable: bwrap, mounts: [Sandbox.Mount(folder + "/checkout", at: Sandbox.checkoutPath, writable: true)],
                                  network: false, privateFolder: folder + "/private", workingDirectory: Sandbox.checkoutPath)
        let old = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--unshare-net",
                   "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--", "/bin/sh", "-c", "/bin/true"]
        var plain: [Double] = [], before: [Double] = [], now: [Double] = []
        for _ in 0..<runs {
            plain.append(try milliseconds { _ = try ProcessRunner.run(["/bin/true"], directory: folder, environment: environment, limits: limits) })
            before.append(try milliseconds { _ = try ProcessRunner.run(old, directory: folder, environment: environment, limits: limits) })
            now.append(try milliseconds { _ = try sandbox.run(["/bin/true"], environment: environment, limits: limits) })
        }
        return [Figure(name: "sandbox-run", size: "-", pipeline: "unsandboxed", samples: plain),
                Figure(name: "sandbox-run", size: "-", pipeline: "bwrap-adr0010", samples: before),
                Figure(name: "sandbox-run", size: "-", pipeline: "bwrap-adr0013", samples: now)]
    }
}
