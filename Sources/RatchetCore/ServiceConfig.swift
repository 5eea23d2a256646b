import Foundation
import RatchetGit

/// `service.yaml`: what Ratchet knows about one service (SPEC §3).
public struct ServiceConfig: Sendable, Equatable {
    public var name: String
    public var description: String
    public var owners: [String]
    /// Shell command run in a checkout; exit 0 passes.
    public var test: String?
    /// Shell command run in main's checkout after a landing or revert.
    public var deploy: String?
    /// `scrape: URL-or-file` or `prometheus: URL`.
    public var metricsScrape: String?
    public var metricsPrometheus: String?
    /// `metrics.scope`: the selector (`{job="kv-cache"}`) every series of this service carries on
    /// the Prometheus server; the agent's `metrics` tool reads only those (default `{service="NAME"}`).
    public var metricsScope: String? = nil
    /// Paths a ticket may change only with human approval (a trailing `/` means a folder).
    public var protectedPaths: [String]
    public var maxAttempts: Int
    public var maxLandingsPerHour: Int
    /// Environment variables passed through to agents.
    public var agentEnv: [String]
    /// Whether the agent's sandbox shares the host's network (`sandbox.network: host`);
    /// otherwise it has only its own loopback (`none`, the default).
    public var sandboxNetwork: Bool
    /// Whether verification (acceptance commands, canary runs, deploy) shares the host's
    /// network (`sandbox.verify_network: host`); default `none`.
    public var verifyNetwork: Bool
    /// Whether `sandbox.network` is written in the file (its default changed from host to none).
    public var declaresNetwork: Bool
    public var allowUnsandboxed: Bool
    /// Paths whose existing files an attempt may change only with approval (adding is free).
    public var testPaths: [String]
    /// Files that change how Python or the test runner starts, held for approval like
    /// protected paths (`startup_paths`, rules of `PythonStartup`, adr/0069).
    public var startupPaths = PythonStartup.defaultRules
    /// Whether `deploy` shares the host's network (`sandbox.deploy_network: host`), e.g. to
    /// serve on the host's loopback; default `none`.
    public var deployNetwork = false
    /// Wall-clock limit of one `deploy` run, seconds (`limits.deploy_timeout`, default 120 s).
    public var deployTimeout: Double = 120
    /// How long the previous instance has to exit after SIGTERM before the next deploy kills
    /// it with SIGKILL, seconds (`limits.deploy_stop_grace`, default 10 s).
    public var deployStopGrace: Double = defaultDeployStopGrace
    public static let defaultDeployStopGrace: Double = 10
    /// Environment variables passed through to `deploy` (`deploy_env`; never `RATCHET_*`).
    public var deployEnv: [String] = []
    /// Wall-clock limit of one agent run, seconds.
    public var agentTimeout: Double
    /// Output kept from one agent run, bytes.
    public var agentOutputBytes: Int
    /// The largest file an agent may write, bytes.
    public var agentFileBytes: Int
    /// The added and changed bytes of one step commit together.
    public var agentChangeBytes: Int
    /// The paths one step commit may change.
    public var agentChangeFiles: Int
    /// The model spend (USD) all attempts at one ticket may report before the attempt ends
    /// (`limits.ticket_spend_usd`); nil: no budget.
    public var ticketSpendUSD: Double?
    /// The steps the agent's tool calls may add to one trajectory (`limits.trajectory_steps`);
    /// the call that reaches it ends the attempt (adr/0043).
    public var trajectorySteps = 5_000
    /// The bytes (arguments, output and data) those steps may hold (`limits.trajectory_bytes`).
    public var trajectoryBytes = 16 << 20

    /// The protected paths when `service.yaml` names none.
    public static let defaultProtectedPaths = ["canary/", "invariants.yaml", "slos.yaml", "service.yaml", "runbooks/", "deploy/"]
    /// The service's notes to agents, which every brief quotes as main has them (adr/0070).
    public static let agentsFile = "AGENTS.md"
    /// Protected whatever `protected_paths` says: what every later agent's brief includes.
    public static let builtInProtectedPaths = [agentsFile]

    /// Parses and validates `service.yaml`; errors name the key that is wrong.
    public static func parse(_ text: String, file: String = "service.yaml") throws -> ServiceConfig {
        let fields = try YAMLFields.parse(text, file: file, typed: false)
        try fields.rejectUnknown(["name", "description", "owners", "test", "deploy", "metrics", "protected_paths", "max_attempts",
                                  "max_landings_per_hour", "agent_env", "sandbox", "limits", "test_paths", "deploy_env",
                                  "startup_paths"])
        let name = try fields.requiredString("name")
        do { _ = try Names.serviceName(name) } catch { throw fields.fail("name", describe(error)) }
        var config = ServiceConfig(
            name: name, description: try fields.string("description") ?? "", owners: try fields.stringList("owners") ?? [],
            test: try fields.string("test"), deploy: try fields.string("deploy"), metricsScrape: nil, metricsPrometheus: nil,
            protectedPaths: try fields.stringList("protected_paths") ?? defaultProtectedPaths,
            maxAttempts: try fields.int("max_attempts", range: 1...100) ?? 3,
            maxLandingsPerHour: try fields.int("max_landings_per_hour", range: 1...10_000) ?? 6,
            agentEnv: try fields.stringList("agent_env") ?? [],
            sandboxNetwork: false, verifyNetwork: false, declaresNetwork: false, allowUnsandboxed: false,
            testPaths: try fields.stringList("test_paths") ?? ["tests/"],
            agentTimeout: 600, agentOutputBytes: 1 << 20, agentFileBytes: 16 << 20, agentChangeBytes: 64 << 20, agentChangeFiles: 2_000)
        if let metrics = try fields.nested("metrics") {
            try metrics.rejectUnknown(["scrape", "prometheus", "scope"])
            config.metricsScrape = try metrics.string("scrape")
            config.metricsPrometheus = try metrics.string("prometheus")
            config.metricsScope = try metrics.string("scope")
            if let scope = config.metricsScope {
                do { _ = try Workspace.scopeMatchers(scope) } catch { throw metrics.fail("scope", describe(error)) }
            }
            if config.metricsScrape != nil && config.metricsPrometheus != nil {
                throw fields.fail("metrics", "give one of scrape or prometheus, not both")
            }
        }
        config.deployEnv = try fields.stringList("deploy_env") ?? []
        for (index, variable) in config.deployEnv.enumerated()
        where !ASCII.isEnvironmentName(variable) || variable.hasPrefix("RATCHET_") {
            throw fields.fail("deploy_env[\(index)]", "'\(variable)' is not an environment variable name deploy may receive")
        }
        for (index, variable) in config.agentEnv.enumerated()
        where !ASCII.isEnvironmentName(variable) || variable.hasPrefix("RATCHET_") {
            throw fields.fail("agent_env[\(index)]", "'\(variable)' is not an environment variable name an agent may receive")
        }
        for (key, paths) in [("protected_paths", config.protectedPaths), ("test_paths", config.testPaths)] {
            for (index, path) in paths.enumerated() where path.isEmpty || path.hasPrefix("/") || path.split(separator: "/").contains("..") {
                throw fields.fail("\(key)[\(index)]", "'\(path)' must be a relative path inside the repository")
            }
        }
        config.startupPaths = try fields.stringList("startup_paths") ?? config.startupPaths
        for (index, rule) in config.startupPaths.enumerated() {
            if let problem = PythonStartup.problem(rule) { throw fields.fail("startup_paths[\(index)]", problem) }
        }
        if let sandbox = try fields.nested("sandbox") {
            try sandbox.rejectUnknown(["network", "verify_network", "allow_unsandboxed", "deploy_network"])
            config.deployNetwork = try networkSetting(sandbox, "deploy_network")
            config.declaresNetwork = try sandbox.string("network") != nil
            config.sandboxNetwork = try networkSetting(sandbox, "network")
            config.verifyNetwork = try networkSetting(sandbox, "verify_network")
            config.allowUnsandboxed = try sandbox.bool("allow_unsandboxed") ?? false
        }
        if let limits = try fields.nested("limits") {
            try limits.rejectUnknown(["agent_timeout", "agent_output_bytes", "agent_file_bytes", "agent_change_bytes", "agent_change_files",
                                      "deploy_timeout", "deploy_stop_grace", "ticket_spend_usd", "trajectory_steps", "trajectory_bytes"])
            config.deployTimeout = try limits.duration("deploy_timeout") ?? config.deployTimeout
            if config.deployTimeout <= 0 { throw limits.fail("deploy_timeout", "must be more than 0") }
            config.deployStopGrace = try limits.duration("deploy_stop_grace") ?? config.deployStopGrace
            if !(0...3600).contains(config.deployStopGrace) { throw limits.fail("deploy_stop_grace", "must be between 0 and 1h") }
            config.agentTimeout = try limits.duration("agent_timeout") ?? config.agentTimeout
            if config.agentTimeout <= 0 { throw limits.fail("agent_timeout", "must be more than 0") }
            config.agentOutputBytes = try limits.int("agent_output_bytes", range: 1024...(1 << 30)) ?? config.agentOutputBytes
            config.agentFileBytes = try limits.int("agent_file_bytes", range: 1024...(1 << 34)) ?? config.agentFileBytes
            config.agentChangeBytes = try limits.int("agent_change_bytes", range: 1024...(1 << 36)) ?? config.agentChangeBytes
            config.agentChangeFiles = try limits.int("agent_change_files", range: 1...1_000_000) ?? config.agentChangeFiles
            config.ticketSpendUSD = try limits.number("ticket_spend_usd")
            if let budget = config.ticketSpendUSD, !(budget > 0) { throw limits.fail("ticket_spend_usd", "must be more than 0") }
            config.trajectorySteps = try limits.int("trajectory_steps", range: 10...1_000_000) ?? config.trajectorySteps
            config.trajectoryBytes = try limits.int("trajectory_bytes", range: 65_536...(1 << 30)) ?? config.trajectoryBytes
        }
        return config
    }

    /// `host` (or true) shares the host's network; `none` (or false, or absent) gives only loopback.
    private static func networkSetting(_ fields: YAMLFields, _ key: String) throws -> Bool {
        switch try fields.string(key)?.lowercased() {
        case "true", "yes", "on", "host": return true
        case nil, "false", "no", "off", "none": return false
        case let other?: throw fields.fail(key, "expected none or host, got '\(other)'")
        }
    }

    /// Whether `path` (a file path in the repository) is protected: a protected path, or a
    /// file the `deploy` command names (deploy runs landed code after each landing).
    public func isProtected(_ path: String) -> Bool { Self.matches(path, allProtectedPaths) || deployPaths.contains(path) }

    /// `protected_paths` with Ratchet's built-in ones (`builtInProtectedPaths`).
    public var allProtectedPaths: [String] { protectedPaths + Self.builtInProtectedPaths.filter { !protectedPaths.contains($0) } }

    /// Whether `path` changes how Python or the test runner starts (`startup_paths`).
    public func isStartup(_ path: String) -> Bool { PythonStartup.matches(path, rules: startupPaths) }

    /// The repository files the `deploy` command names (`sh deploy/run.sh` names `deploy/run.sh`).
    public var deployPaths: [String] {
        guard let deploy else { return [] }
        return deploy.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ";" || $0 == "&" || $0 == "|" }).compactMap { word in
            var token = String(word).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            if token.hasPrefix("./") { token.removeFirst(2) }
            guard !token.isEmpty, !token.hasPrefix("-"), !token.hasPrefix("/"), !token.hasPrefix("$"), !token.contains(".."),
                  token.contains("/") || token.contains(".") else { return nil }
            return token
        }
    }

    /// The bounds of a step commit's reading of an agent's worktree: the `limits.agent_*`
    /// sizes, and at most `stepReadingSeconds` for the whole reading.
    var agentFolderLimits: FolderLimits {
        FolderLimits(fileBytes: agentFileBytes, changeBytes: agentChangeBytes, changeCount: agentChangeFiles, seconds: Self.stepReadingSeconds)
    }

    /// Seconds a step commit may spend reading a worktree (a service's own 20,000 files take a
    /// fraction of one; an agent's ignored files under a huge `.gitignore` could take hours).
    static let stepReadingSeconds: Double = 60

    /// Whether `path` lies under one of the `test_paths`.
    public func isTestPath(_ path: String) -> Bool { Self.matches(path, testPaths) }

    /// Whether `path` is one of `rules` (a trailing `/` means a folder).
    private static func matches(_ path: String, _ rules: [String]) -> Bool {
        rules.contains { rule in rule.hasSuffix("/") ? path.hasPrefix(rule) : (path == rule || path.hasPrefix(rule + "/")) }
    }
}
