import Foundation

/// Finds the templates and canary modules that ship with Ratchet, from any working directory.
///
/// The search order is: `$RATCHET_HOME` (a folder holding `templates/` and `canaries/`);
/// then, starting from the real path of the running executable, each ancestor folder
/// that holds both (this finds the source checkout from `.build/debug/ratchet`); then
/// `../share/ratchet` next to the executable's folder (an installed layout).
public enum Resources {
    /// The folder holding `templates/` and `canaries/`, or nil when none is found.
    public static func root(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        let fm = FileManager.default
        func holdsResources(_ url: URL) -> Bool {
            fm.fileExists(atPath: url.appendingPathComponent("templates").path)
                && fm.fileExists(atPath: url.appendingPathComponent("canaries").path)
        }
        if let home = environment["RATCHET_HOME"], !home.isEmpty {
            let url = URL(fileURLWithPath: home)
            return holdsResources(url) ? url : nil
        }
        let executable = URL(fileURLWithPath: (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            .resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        let shared = folder.deletingLastPathComponent().appendingPathComponent("share/ratchet")
        while folder.path != "/" {
            if holdsResources(folder) { return folder }
            folder = folder.deletingLastPathComponent()
        }
        return holdsResources(shared) ? shared : nil
    }

    /// The names of the shipped templates.
    public static func templates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        guard let root = root(environment: environment) else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("templates").path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }
}
