import io
import json
import os
import subprocess
import sys
import unittest

from batchworker.jobs import ConfigError, load_config, run_job

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class JobTests(unittest.TestCase):
    def test_each_op(self):
        self.assertEqual(run_job({"id": "a", "op": "sum", "payload": [1, 2, 3.5]}, 1000)["result"], 6.5)
        self.assertEqual(run_job({"id": "b", "op": "wordcount", "payload": " two  words\n"}, 1000)["result"], 2)
        self.assertEqual(run_job({"id": "c", "op": "sort", "payload": [3, 1, 2]}, 1000)["result"], [1, 2, 3])
        self.assertEqual(run_job({"id": "d", "op": "sha256", "payload": ""}, 1000)["result"],
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    def test_bad_jobs_get_error_results(self):
        self.assertFalse(run_job({"id": "x", "op": "nope", "payload": 1}, 1000)["ok"])
        self.assertFalse(run_job({"id": "x", "op": "sum", "payload": "no"}, 1000)["ok"])
        self.assertFalse(run_job({"op": "sum", "payload": []}, 1000)["ok"])
        self.assertFalse(run_job({"id": "x", "op": "sum", "payload": list(range(1000))}, 100)["ok"])

    def test_shipped_config_is_valid(self):
        config = load_config(os.path.join(ROOT, "config", "worker.json"))
        self.assertGreaterEqual(config["batch_size"], 1)
        with open(os.path.join(ROOT, "config", "worker.json"), encoding="utf-8") as f:
            text = f.read()
        self.assertEqual(text, json.dumps(config, indent=2) + "\n", "keep config/worker.json pretty-printed, 2 spaces")

    def test_bad_config_is_refused(self):
        path = os.path.join(ROOT, "tests", "_bad.json")
        try:
            with open(path, "w") as f:
                json.dump({"batch_size": 0, "threads": 1, "max_payload_bytes": 100}, f)
            with self.assertRaises(ConfigError):
                load_config(path)
        finally:
            os.remove(path)


class WorkerProcessTests(unittest.TestCase):
    def test_jobs_in_results_out_with_flush(self):
        lines = [json.dumps({"id": str(i), "op": "sum", "payload": [i, i]}) for i in range(5)]
        lines += [json.dumps({"flush": True}), "not json", json.dumps({"id": "w", "op": "wordcount", "payload": "a b c"})]
        proc = subprocess.run([sys.executable, "-m", "batchworker.worker", "--config", "config/worker.json"],
                              input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ROOT, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = [json.loads(line) for line in proc.stdout.splitlines()]
        self.assertEqual([r["result"] for r in out[:5]], [0, 2, 4, 6, 8])
        self.assertEqual(out[5], {"flushed": 5})
        self.assertFalse(out[6]["ok"])
        self.assertEqual(out[7], {"id": "w", "ok": True, "result": 3})


if __name__ == "__main__":
    unittest.main()
