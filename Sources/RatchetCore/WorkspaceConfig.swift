import Foundation
import RatchetGit

/// `ratchet.yaml`: the workspace's settings (SPEC §2).
public struct WorkspaceConfig: Sendable, Equatable {
    /// Ratchet's committer identity.
    public var identity: Signature
    /// The agent used when neither `--agent` nor the ticket names one.
    public var defaultAgent: String?
    /// Named command agents: `claude: "claude -p …"`, used as `--agent claude`.
    public var agents: [String: String]
    /// Parallel attempts of the pump.
    public var concurrency: Int
    /// Post-landing watch window, seconds.
    public var watchWindow: Double
    /// Reflection window, seconds.
    public var reflectWindow: Double
    /// Regular expressions whose matches are redacted before anything is stored.
    public var secretPatterns: [String]
    /// `normal` (no fsync of git objects and refs; SQLite WAL synchronous=NORMAL) or `full`
    /// (fsync of git objects and refs; SQLite synchronous=FULL). adr/0009.
    public var durability: String
    /// Flap thresholds of `ratchet reflect` (`reflect:`).
    public var reflect = ReflectionThresholds()
    /// Webhooks (http or https URLs) that escalations, needs-approval tickets and reflection findings are posted to.
    public var notify: [String] = []

    /// The defaults written by `ratchet init`.
    public static let defaults = WorkspaceConfig(
        identity: Signature(name: "Ratchet", email: "ratchet@ratchet.invalid"), defaultAgent: nil, agents: [:],
        concurrency: 2, watchWindow: 600, reflectWindow: 30 * 86400, secretPatterns: [], durability: "normal")

    /// The text `ratchet init` writes.
    public static let initialText = """
        # Ratchet workspace settings (docs/formats.md#ratchetyaml).
        identity:                 # committer of every commit Ratchet writes
          name: Ratchet
          email: ratchet@ratchet.invalid
        default_agent: null       # agent when neither --agent nor the ticket names one
        agents: {}                # named command agents, e.g. claude: "claude -p \\"$(cat $RATCHET_TICKET_FILE)\\""
        concurrency: 2            # parallel attempts of the pump
        watch_window: 10m         # how long a landing is watched
        reflect_window: 30d       # how far back reflection looks
        reflect:                  # flag a pattern at high, clear it at low or below (docs/reflection.md)
          hysteresis: {high: 3, low: 1}        # one fingerprint fixed again and again
          oscillation: {high: 1, low: 0}       # a file or JSON value back to an earlier content
          drift: {high: 1, low: 0}             # main fails its canary against main of a week earlier
          non_convergence: {high: 1, low: 0}   # tickets that used up their attempts
          escalations: {high: 3, low: 1}       # escalations of one service
        notify: []                # webhook URLs for escalations, approvals and findings (Slack-compatible)
        secret_patterns: []       # regular expressions redacted before anything is stored
        durability: normal        # normal: survives kill -9; full: also fsyncs git and SQLite (adr/0009)

        """

    /// Parses `ratchet.yaml`.
    public static func parse(_ text: String, file: String = "ratchet.yaml") throws -> WorkspaceConfig {
        let fields = try YAMLFields.parse(text, file: file, typed: false)
        try fields.rejectUnknown(["identity", "default_agent", "agents", "concurrency", "watch_window", "reflect_window", "notify", "secret_patterns",
                                  "durability", "reflect"])
        var config = defaults
        if let identity = try fields.nested("identity") {
            try identity.rejectUnknown(["name", "email"])
            config.identity = Signature(name: try Names.line(identity.requiredString("name"), what: "\(file): identity.name", limit: 100),
                                        email: try Names.line(identity.requiredString("email"), what: "\(file): identity.email", limit: 200))
        }
        config.defaultAgent = try fields.string("default_agent")
        if let agents = try fields.nested("agents") {
            for key in agents.mapping.keys.compactMap(\.string) {
                _ = try Names.agentName(key)
                config.agents[key] = try agents.requiredString(key)
            }
        }
        config.concurrency = try fields.int("concurrency", range: 1...256) ?? config.concurrency
        config.watchWindow = try fields.duration("watch_window") ?? config.watchWindow
        config.reflectWindow = try fields.duration("reflect_window") ?? config.reflectWindow
        config.reflect = try ReflectionThresholds.parse(try fields.nested("reflect"))
        config.notify = try Notifier.webhooks(fields.stringList("notify") ?? [], file: file)
        config.secretPatterns = try fields.stringList("secret_patterns") ?? []
        config.durability = try fields.string("durability") ?? "normal"
        guard ["normal", "full"].contains(config.durability) else { throw fields.fail("durability", "must be normal or full, not '\(config.durability)'") }
        for pattern in config.secretPatterns {
            do { _ = try NSRegularExpression(pattern: pattern) } catch {
                throw RatchetError("\(file): secret_patterns: invalid regular expression '\(pattern)'")
            }
        }
        return config
    }
}
