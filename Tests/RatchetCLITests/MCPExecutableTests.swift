import Foundation
import RatchetTestSupport
import Testing

/// `ratchet mcp` is its own executable (adr/0073): the only one that links the MCP SDK, and
/// through it FoundationNetworking and libcurl, whose 20 libraries cost every process start
/// of whatever links them 4-6 ms (docs/performance.md, session 19).
@Suite("MCP executable")
struct MCPExecutableTests {
    /// `ratchet` must not link libcurl again: its dynamic section (what the loader binds at
    /// every start), read from the binary the tests run.
    @Test func theRatchetBinaryLinksNeitherFoundationNetworkingNorCurl() throws {
        let section = try run(["readelf", "--dynamic", ratchetBinary])
        #expect(section.status == 0 && section.stdout.contains("libc.so"), "\(section.stderr)")
        for library in ["libcurl", "FoundationNetworking", "libnghttp2", "libgnutls", "libssl"] {
            #expect(!section.stdout.contains(library), "\(ratchetBinary) needs \(library)")
        }
        let loaded = try run(["ldd", ratchetBinary])
        #expect(loaded.status == 0 && !loaded.stdout.contains("libcurl"), "\(loaded.stdout)")
        // The MCP server is where the SDK went (the check above reads the right thing).
        let mcp = (ratchetBinary as NSString).deletingLastPathComponent + "/ratchet-mcp"
        #expect(try run(["ldd", mcp]).stdout.contains("libcurl"))
    }

    /// libgit2 is linked statically with its dependencies (adr/0081): no libgit2, mbedTLS,
    /// libssh2, OpenSSL or Kerberos library is loaded when `ratchet` starts, in the binary's
    /// dynamic section or through another library (ldd: the whole loaded set).
    @Test func theRatchetBinaryLoadsNoLibraryOfLibgit2s() throws {
        let loaded = try run(["ldd", ratchetBinary])
        #expect(loaded.status == 0 && loaded.stdout.contains("libc.so"), "\(loaded.stderr)")
        for library in ["libgit2", "libmbed", "libssh2", "libcrypto", "libhttp_parser", "libpcre2", "libgssapi", "libkrb5"] {
            #expect(!loaded.stdout.contains(library), "\(ratchetBinary) loads \(library):\n\(loaded.stdout)")
        }
    }

    /// `ratchet mcp` execs `ratchet-mcp` beside the binary with the same arguments and
    /// environment; without it, one `error:` line naming it.
    @Test func theFullBinaryExecsTheMCPServerBesideIt() throws {
        let folder = ScratchFolder()
        let full = folder("bin/ratchet")
        try FileManager.default.createDirectory(atPath: folder("bin"), withIntermediateDirectories: true)
        try install(ratchetBinary, at: full)
        let missing = try run([full, "mcp"], in: folder.path)
        #expect(missing.status == 1 && missing.stderr == "error: 'ratchet mcp' is served by ratchet-mcp, which is not installed beside \(full) (swift build --product ratchet-mcp)\n",
                "\(missing.stderr)")
        try script(folder("bin/ratchet-mcp"), #"echo "ratchet-mcp $* $MARK""#)
        let served = try run([full, "mcp"], in: folder.path, environment: ["MARK": "same-environment"])
        #expect(served.status == 0 && served.stdout == "ratchet-mcp mcp same-environment\n", "\(served.stderr)")
    }

    /// The sandbox's thin client execs `ratchet-mcp` itself for `ratchet mcp` (one exec fewer),
    /// from `../libexec` (the sandbox's layout) or beside it, and everything else the full binary.
    @Test func theThinClientExecsTheMCPServerDirectly() throws {
        let folder = ScratchFolder()
        let thin = (ratchetBinary as NSString).deletingLastPathComponent + "/ratchet-tool"
        for sub in ["bin", "libexec"] { try FileManager.default.createDirectory(atPath: folder(sub), withIntermediateDirectories: true) }
        try install(thin, at: folder("bin/ratchet"))
        try script(folder("libexec/ratchet"), #"echo "full $*""#)
        let withoutMCP = try run([folder("bin/ratchet"), "mcp"], in: folder.path)
        #expect(withoutMCP.stdout == "full mcp\n", "no ratchet-mcp: the full binary answers; \(withoutMCP.stderr)")
        try script(folder("libexec/ratchet-mcp"), #"echo "ratchet-mcp $*""#)
        let direct = try run([folder("bin/ratchet"), "mcp"], in: folder.path)
        #expect(direct.stdout == "ratchet-mcp mcp\n", "\(direct.stderr)")
        #expect(try run([folder("bin/ratchet"), "mcp", "--help"], in: folder.path).stdout == "full mcp --help\n")
        #expect(try run([folder("bin/ratchet"), "--version"], in: folder.path).stdout == "full --version\n")
    }

    /// An executable at `path` running `body`.
    private func script(_ path: String, _ body: String) throws {
        try Data("#!/bin/sh\n\(body)\n".utf8).write(to: URL(fileURLWithPath: path + ".source"))
        try install(path + ".source", at: path)
    }

    /// Copies an executable by a child process (`install`), never through a descriptor of this
    /// process: another test's child started meanwhile could inherit a descriptor open for
    /// writing, and exec of the file would fail with ETXTBSY.
    private func install(_ source: String, at path: String) throws {
        let installed = try run(["install", "-m", "755", source, path])
        #expect(installed.status == 0, "\(installed.stderr)")
    }
}
