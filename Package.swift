// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Ratchet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ratchet", targets: ["ratchet"]),
        .executable(name: "ratchet-tool", targets: ["ratchet-tool"]),
        .executable(name: "ratchet-mcp", targets: ["ratchet-mcp"]),
        .library(name: "RatchetCore", targets: ["RatchetCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // The C boundary: module map + shim header, nothing else.
        // Headers only (Debian `libgit2-dev`, in the default include path): the library itself is
        // linked statically by RatchetGit (adr/0081), so this module links nothing.
        .systemLibrary(name: "Clibgit2"),
        // POSIX calls Swift cannot reach (GNU extensions, variadic functions).
        .target(name: "CPosix", exclude: ["README.md"], linkerSettings: [.linkedLibrary("sqlite3")]),
        // A safe Swift API over libgit2.
        // zlib, for writing packs (required by libgit2-dev already).
        .systemLibrary(name: "Czlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libgit2's network dependencies answered in-process (adr/0053, adr/0081): no CA bundle
        // parsed at start-up, no Kerberos; libgit2 never speaks to a network here.
        .target(name: "CGitTLS", exclude: ["README.md"]),
        // A safe Swift API over libgit2, which it links statically with the libraries Debian's
        // libgit2 is built with (adr/0081): no dynamic loading of twenty libraries at every start.
        .target(name: "RatchetGit", dependencies: ["Clibgit2", "Czlib", "CGitTLS"], exclude: ["README.md"],
                linkerSettings: libgit2Static),
        // The SQLite store: schema, migrations, records, the event log.
        .target(name: "RatchetStore", dependencies: ["CPosix", .product(name: "GRDB", package: "GRDB.swift")], exclude: ["README.md"]),
        // Metrics without dependencies: the exposition parser, PromQL's parser and evaluator.
        .target(name: "RatchetMetrics", exclude: ["README.md"]),
        // Text safe for a terminal, without Foundation (shared by RatchetCore and ratchet-tool).
        .target(name: "RatchetTerminalText", exclude: ["README.md"]),
        // The domain: workspace, services, tickets, attempts, landing.
        .target(
            name: "RatchetCore",
            dependencies: [
                "RatchetGit", "RatchetStore", "CPosix", "RatchetMetrics", "RatchetTerminalText",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md", "Canary/README.md", "Review/README.md", "Metrics/README.md", "Observe/README.md",
                      "Tools/README.md", "Trajectory/README.md", "Runbook/README.md", "Pump/README.md", "HTTP/README.md"]
        ),
        // The executable: one file per command, no logic. It links no FoundationNetworking
        // (no libcurl at every start: adr/0073); RatchetCLITests check its dynamic section.
        .executableTarget(
            name: "ratchet",
            dependencies: [
                "RatchetCore", "RatchetStore", "RatchetMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["README.md"]
        ),
        // `ratchet mcp`: the only executable that links the MCP SDK (which imports
        // FoundationNetworking); `ratchet mcp` and the sandbox's thin client exec it.
        .executableTarget(name: "ratchet-mcp", dependencies: ["RatchetCore", "RatchetStore", .product(name: "MCP", package: "swift-sdk")],
                          exclude: ["README.md"]),
        // The thin client's C calls (prctl, close_range), linking no library.
        .target(name: "CToolPosix", exclude: ["README.md"]),
        // The thin `ratchet` of an agent's sandbox: answers `ratchet tool` itself, hands the rest to
        // the full binary (no Foundation, static standard library: start-up in ~2 ms, adr/0042);
        // also the init of a deploy's sandbox (`ratchet sandbox-init`, adr/0077).
        .executableTarget(name: "ratchet-tool", dependencies: ["RatchetTerminalText", "CToolPosix"], exclude: ["README.md"],
                          linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        // Scratch folders and process helpers shared by the test targets.
        .target(name: "RatchetTestSupport", path: "Tests/RatchetTestSupport"),
        // The benchmark: Ratchet's lifecycle against the git CLI (swift run -c release ratchet-bench).
        .executableTarget(
            name: "ratchet-bench",
            dependencies: [
                "RatchetGit", "RatchetStore", "RatchetCore", "CPosix", "RatchetMetrics",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["README.md"]
        ),
        .testTarget(name: "RatchetGitTests", dependencies: ["RatchetGit", "RatchetTestSupport"]),
        .testTarget(name: "RatchetStoreTests", dependencies: ["RatchetStore"]),
        .testTarget(name: "RatchetMetricsTests", dependencies: ["RatchetMetrics"]),
        .testTarget(name: "RatchetCoreTests", dependencies: ["RatchetCore", "RatchetGit", "RatchetStore", "RatchetMetrics", "RatchetTestSupport"], exclude: ["Golden"]),
        // A scripted agent that acts over MCP with the SDK's own client (tests only, never a model).
        .executableTarget(name: "ratchet-scripted-mcp-agent", dependencies: [.product(name: "MCP", package: "swift-sdk"),
                                                                             .product(name: "SystemPackage", package: "swift-system")],
                          path: "Tests/ScriptedMCPAgent", exclude: ["README.md"]),
        // End-to-end: drives the built `ratchet` binary.
        .testTarget(name: "RatchetCLITests", dependencies: ["ratchet", "ratchet-mcp", "ratchet-scripted-mcp-agent", "RatchetTestSupport"], exclude: ["Fixtures"]),
    ]
)

/// libgit2 and what Debian builds it with, as static archives (`-l:NAME.a`, in dependency
/// order), and libgit2's two calls into mbedTLS's CA parser routed to CGitTLS (adr/0053,
/// adr/0081). zlib stays dynamic: Foundation loads it anyway.
var libgit2Static: [LinkerSetting] {
    [
        .linkedLibrary(":libgit2.a"), .linkedLibrary(":libmbedtls.a"), .linkedLibrary(":libmbedx509.a"),
        .linkedLibrary(":libmbedcrypto.a"), .linkedLibrary(":libhttp_parser.a"), .linkedLibrary(":libssh2.a"),
        .linkedLibrary(":libcrypto.a"), .linkedLibrary(":libpcre2-8.a"), .linkedLibrary("z"),
        .unsafeFlags(["-Xlinker", "--wrap=mbedtls_x509_crt_parse_file", "-Xlinker", "--wrap=mbedtls_x509_crt_parse_path"]),
    ]
}
