import Foundation

/// A deterministic canary module for tests. It reads files of the checkout it runs in
/// (baseline: main; candidate: the merge result):
/// - `level` (default 10): latency_ms samples are level + i/100 for i in 0..<20;
/// - `drag` (default 0): added to `level` when a file `amplifier` exists;
/// - `errors` (default 0): the value of 5 error_rate samples;
/// - `fault` (default none): crash | hang | garbage | flood | orphan PIDFILE | nodata | stderr.
/// It also prints its role and that its own folder is read-only, as a `probe` metric.
enum TestCanaryModule {
    static let script = #"""
#!/usr/bin/env python3
import json, os, subprocess, sys, time

def read(name, default):
    try:
        with open(name) as f:
            return f.read().strip()
    except OSError:
        return default

role = os.environ.get("RATCHET_CANARY_ROLE", "")
fault = read("fault", "none").split()
kind = fault[0] if fault else "none"
print(f"canary: role={role} fault={kind}", file=sys.stderr, flush=True)
if kind == "crash":
    print("canary: boom", file=sys.stderr)
    sys.exit(3)
if kind == "hang":
    time.sleep(3600)
if kind == "garbage":
    print("this is not json")
    sys.exit(0)
if kind == "flood":
    chunk = ("x" * 1023 + "\n") * 1024
    for _ in range(1024):   # a gigabyte
        sys.stdout.write(chunk)
    sys.exit(0)
if kind == "orphan":
    child = subprocess.Popen(["sleep", "3600"])
    with open(fault[1], "w") as f:
        f.write(str(child.pid))
level = float(read("level", "10"))
# `drag` slows the service down only where `amplifier` exists: a change that is harmless
# on one main and a regression on a later one.
level += float(read("drag", "0")) * (1 if os.path.exists("amplifier") else 0)
errors = float(read("errors", "0"))
if kind != "nodata":
    for i in range(20):
        print(json.dumps({"metric": "latency_ms", "value": level + i / 100, "labels": {"i": str(i)}}))
for i in range(5):
    print(json.dumps({"metric": "error_rate", "value": errors, "labels": {}}))
here = os.environ["RATCHET_CANARY_DIR"]
# Mode bits, not os.access: tests may run as root, whom permissions do not stop.
writable = any(os.stat(p).st_mode & 0o222 for p in (here, os.path.join(here, "run"), os.path.join(here, "canary.yaml")))
print(json.dumps({"metric": "probe", "value": 1 if (role in ("baseline", "candidate") and not writable) else 0}))
"""#

    /// latency_ms (critical unless said otherwise), error_rate critical, probe; thresholds 95/70.
    static func yaml(latencyCritical: Bool = true, allowed: Double = 0.1, timeout: String = "60s", extra: String = "") -> String {
        """
        command: ["./run"]
        timeout: \(timeout)
        parallel: true
        metrics:
          - name: latency_ms
            direction: increase
            allowed_change: \(allowed)
            critical: \(latencyCritical)
            weight: 1
          - name: error_rate
            direction: increase
            allowed_change: 0
            critical: true
            weight: 2
          - name: probe
            direction: either
            allowed_change: 0
            weight: 1
        thresholds: { pass: 95, marginal: 70 }
        checks:
          - min(probe) >= 1
        \(extra)
        """
    }
}
