import Foundation
@testable import RatchetCore
import RatchetTestSupport
import Testing

/// https through the curl command-line tool (adr/0073), against a real TLS server on loopback
/// with a throwaway certificate, trusted through curl's own `CURL_CA_BUNDLE`.
@Suite("CurlHTTP")
struct CurlHTTPTests {
    let folder = ScratchFolder()

    func trusting(_ server: HTTPSServer) -> [String: String] {
        ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "CURL_CA_BUNDLE": server.certificate]
    }

    @Test func aPageIsFetchedAndStatusesAreReportedLikeHTTP() throws {
        let server = try HTTPSServer(folder)
        defer { server.stop() }
        let environment = trusting(server)
        let page = try MetricsHTTP.get(try #require(URL(string: server.url("/page"))), timeout: 20, environment: environment)
        #expect(String(decoding: page, as: UTF8.self) == HTTPSServer.page)
        // A 500 is an answer: its status reaches the caller, which refuses it in the http paths' words.
        let failing = try #require(URL(string: server.url("/fail")))
        #expect(try HTTPClient.get(failing, timeout: 20, maxBytes: 1 << 20, accept: "*/*", environment: environment)
                == HTTPAnswer(status: 500, body: Data("boom".utf8)))
        #expect(message { _ = try MetricsHTTP.get(failing, timeout: 20, environment: environment) } == "GET \(server.url("/fail")): HTTP status 500")
        // Untrusted (no CA named): curl's own reason, in the same line shape.
        let untrusted = message { _ = try MetricsHTTP.get(try #require(URL(string: server.url("/page"))), timeout: 20, environment: [:]) }
        #expect(untrusted?.hasPrefix("GET \(server.url("/page")): ") == true && untrusted?.contains("certificate") == true, "\(untrusted ?? "")")
    }

    @Test func anEndlessOrAnnouncedLargeAnswerIsCutAtTheLimit() throws {
        let server = try HTTPSServer(folder)
        defer { server.stop() }
        let environment = trusting(server)
        // No Content-Length, no end: Ratchet's own limit on curl's stdout kills curl.
        let endless = message { _ = try MetricsHTTP.get(try #require(URL(string: server.url("/endless"))), timeout: 60, maxBytes: 1 << 20, environment: environment) }
        #expect(endless == "GET \(server.url("/endless")): answer larger than 1048576 bytes")
        // A length over the limit, announced: curl's --max-filesize refuses it before the body.
        let big = message { _ = try MetricsHTTP.get(try #require(URL(string: server.url("/big"))), timeout: 60, maxBytes: 1 << 20, environment: environment) }
        #expect(big == "GET \(server.url("/big")): answer larger than 1048576 bytes")
    }

    @Test func aPostCarriesItsBodyExactlyAndKeepsTheURLOffTheCommandLine() throws {
        let server = try HTTPSServer(folder)
        defer { server.stop() }
        let body = Data(#"{"text":"quote \" backslash \\ tab \t é <&>"}"#.utf8)
        let url = try #require(URL(string: server.url("/hook?token=secret")))
        #expect(try HTTPClient.postJSON(body, to: url, timeout: 20, environment: trusting(server)).status == 200)
        #expect(server.posted() == [String(decoding: body, as: UTF8.self)])
        let config = String(decoding: CurlHTTP.config(CurlHTTP.Request(method: "POST", url: url, headers: [], body: body, timeout: 1, maxBytes: 1)),
                            as: UTF8.self)
        #expect(config.contains(#"url = "\#(server.url("/hook?token=secret"))""#))
    }

    @Test func aMissingCurlIsNamedWithItsPackage() throws {
        let url = try #require(URL(string: "https://127.0.0.1:1/metrics"))
        let missing = message { _ = try MetricsHTTP.get(url, timeout: 5, environment: ["PATH": folder.path]) }
        #expect(missing == "GET https://127.0.0.1:1/metrics: https needs the curl command-line tool, which is not on PATH (Debian package curl)")
        // Nothing listening: the connect failure, in the http path's words.
        let refused = message { _ = try MetricsHTTP.get(url, timeout: 5) }
        #expect(refused?.hasPrefix("GET https://127.0.0.1:1/metrics: cannot connect: ") == true, "\(refused ?? "")")
        let plain = message { _ = try MetricsHTTP.get(try #require(URL(string: "http://127.0.0.1:1/metrics")), timeout: 5) }
        #expect(plain?.hasPrefix("GET http://127.0.0.1:1/metrics: cannot connect: ") == true, "\(plain ?? "")")
    }
}
