import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

@Suite("Verification checkouts")
struct CheckoutPoolTests {
    @Test func aPooledCheckoutIsSwitchedNotRewrittenAndRunsNeverDirtyIt() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let repository = try Repository.open(workspace.servicePath("svc"))
        let main = try #require(try repository.resolveReference("refs/heads/main"))
        let identity = Signature(name: "T", email: "t@example.invalid")
        let next = try repository.commit(on: main, applying: [.upsert("extra.txt", try repository.writeBlob(Data("x\n".utf8)))],
                                         author: identity, committer: identity, message: "next\n")
        let config = try workspace.serviceConfig("svc")
        // A run plants a sitecustomize.py in its checkout; the next run on the same slot never sees it.
        let planted = try workspace.runVerification(["/bin/sh", "-c", "echo 'raise SystemExit(3)' > sitecustomize.py && pwd"], on: main,
                                                    repository: repository, config: config)
        #expect(planted.succeeded && planted.output.hasPrefix(Sandbox.checkoutPath), "\(planted.output)")
        let next1 = try workspace.runVerification(["/bin/sh", "-c", "test ! -e sitecustomize.py && test -f extra.txt"], on: next,
                                                  repository: repository, config: config)
        #expect(next1.succeeded, "\(next1.output)")
        let slot = workspace.checkoutPoolFolder("svc") + "/0"
        #expect(try String(contentsOfFile: slot + "/tree", encoding: .utf8).hasPrefix(try repository.commit(next).tree.hex))
        #expect(!FileManager.default.fileExists(atPath: slot + "/files/sitecustomize.py"))
        // Back to main: extra.txt goes, the same slot is used.
        let back = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(back.files == slot + "/files" && !FileManager.default.fileExists(atPath: back.files + "/extra.txt"))
        // While it is claimed, another claim gets another slot.
        let other = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(other.files != back.files)
        back.release()
        other.release()
    }

    @Test func aHalfSwitchedSlotIsRebuiltAndDoctorKnowsThePool() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let repository = try Repository.open(workspace.servicePath("svc"))
        let main = try #require(try repository.resolveReference("refs/heads/main"))
        try workspace.pooledCheckout(of: main, service: "svc", repository: repository).release()
        let slot = workspace.checkoutPoolFolder("svc") + "/0"
        // A kill mid-switch: no tree file, a stray file.
        try FileManager.default.removeItem(atPath: slot + "/tree")
        try Data("stray\n".utf8).write(to: URL(fileURLWithPath: slot + "/files/stray.txt"))
        let report = try workspace.doctor(repair: false)
        #expect(report.findings.contains { $0.kind == "checkout-pool" && !$0.repaired })
        let rebuilt = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(rebuilt.files == slot + "/files" && !FileManager.default.fileExists(atPath: slot + "/files/stray.txt"))
        rebuilt.release()
        try FileManager.default.removeItem(atPath: slot + "/tree")
        let repaired = try workspace.doctor(repair: true)
        #expect(repaired.findings.contains { $0.kind == "checkout-pool" && $0.repaired })
        #expect(!FileManager.default.fileExists(atPath: slot))
    }
}
