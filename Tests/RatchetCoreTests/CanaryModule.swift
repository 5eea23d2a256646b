import Foundation

/// A deterministic canary module for tests, speaking the round protocol (docs/canary.md):
/// one line on stdin asks for a round, its samples end with `{"round": N, "done": true}`,
/// stdin closed means stop. It reads files of the checkout it runs in (main, or the merge
/// result: it cannot tell which):
/// - `level` (default 10): latency_ms samples of each round are level + i/100 for i in 0..<20;
/// - `drag` (default 0): added to `level` when a file `amplifier` exists;
/// - `errors` (default 0): the value of 5 error_rate samples per round;
/// - `fault` (default none): crash [ROUND] | hang | garbage | flood | orphan PIDFILE | nodata
///   | stop ROUNDS (exits 0 after that many rounds) | bimodal (odd rounds ×2, even ×0.5).
/// It prints a `probe` metric: 1 when no role is in its environment and its own folder is
/// read-only; and on stderr what it can see (environment, folder, file times) for the
/// blindness tests.
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

fault = read("fault", "none").split()
kind = fault[0] if fault else "none"
seen = {"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv,
        "mtimes": sorted({int(os.stat(p).st_mtime) for p in os.listdir(".")})}
print("canary: sees " + json.dumps(seen, sort_keys=True), file=sys.stderr, flush=True)
if kind == "hang":
    time.sleep(3600)
if kind == "orphan":
    child = subprocess.Popen(["sleep", "3600"])
    with open(fault[1], "w") as f:
        f.write(str(child.pid))
level = float(read("level", "10"))
# `drag` slows the service down only where `amplifier` exists: a change that is harmless
# on one main and a regression on a later one.
level += float(read("drag", "0")) * (1 if os.path.exists("amplifier") else 0)
errors = float(read("errors", "0"))
here = os.environ["RATCHET_CANARY_DIR"]
# Mode bits, not os.access: tests may run as root, whom permissions do not stop.
writable = any(os.stat(p).st_mode & 0o222 for p in (here, os.path.join(here, "run"), os.path.join(here, "canary.yaml")))
blind = not any("ROLE" in k or v in ("baseline", "candidate") for k, v in os.environ.items())

def emit(metric, value, r):
    print(json.dumps({"metric": metric, "value": value, "round": r, "labels": {"k": "v"}}))

for line in sys.stdin:
    r = int(line)
    if kind == "crash" and r >= int(fault[1] if len(fault) > 1 else 1):
        print(f"canary: boom in round {r}", file=sys.stderr)
        sys.exit(3)
    if kind == "garbage":
        print("this is not json", flush=True)
        continue
    if kind == "flood":
        chunk = (json.dumps({"metric": "filler", "value": 1, "labels": {"x": "x" * 980}}) + "\n") * 1024
        for _ in range(1024):   # a gigabyte
            sys.stdout.write(chunk)
    if kind == "stop" and r > int(fault[1]):
        sys.exit(0)
    scale = (2.0 if r % 2 else 0.5) if kind == "bimodal" else 1.0
    if kind != "nodata":
        for i in range(20):
            emit("latency_ms", level * scale + i / 100, r)
    for i in range(5):
        emit("error_rate", errors, r)
    emit("probe", 1 if blind and not writable else 0, r)
    print(json.dumps({"round": r, "done": True}), flush=True)
"""#

    /// latency_ms (critical unless said otherwise), error_rate critical, probe; thresholds 95/70.
    static func yaml(latencyCritical: Bool = true, allowed: Double = 0.1, timeout: String = "60s", extra: String = "") -> String {
        """
        command: ["./run"]
        timeout: \(timeout)
        parallel: true
        rounds: { min: 3, max: 6 }
        metrics:
          - name: latency_ms
            direction: increase
            allowed_change: \(allowed)
            critical: \(latencyCritical)
            weight: 1
          - name: error_rate
            direction: increase
            allowed_change: 0
            effect: difference
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
