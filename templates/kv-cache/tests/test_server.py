"""End-to-end tests: a real server on a free loopback port, real HTTP."""

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kvcache.server import make_server  # noqa: E402

CONFIG = {"capacity": 3, "ttl_seconds": 300, "max_value_bytes": 16, "port": 0}


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = make_server(dict(CONFIG), "127.0.0.1", 0)
        cls.port = cls.server.server_address[1]
        cls.thread = threading.Thread(target=cls.server.serve_forever,
                                      kwargs={"poll_interval": 0.05}, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(2)

    def setUp(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    def tearDown(self):
        self.conn.close()

    def request(self, method, path, body=None):
        self.conn.request(method, path, body=body)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def metrics(self):
        status, body = self.request("GET", "/metrics")
        self.assertEqual(status, 200)
        return body.decode()

    def test_healthz(self):
        self.assertEqual(self.request("GET", "/healthz"), (200, b"ok\n"))

    def test_put_get_delete(self):
        self.assertEqual(self.request("PUT", "/kv/alpha", b"one")[0], 204)
        self.assertEqual(self.request("GET", "/kv/alpha"), (200, b"one"))
        self.assertEqual(self.request("PUT", "/kv/alpha", b"two")[0], 204)
        self.assertEqual(self.request("GET", "/kv/alpha"), (200, b"two"))
        self.assertEqual(self.request("DELETE", "/kv/alpha")[0], 204)
        self.assertEqual(self.request("GET", "/kv/alpha")[0], 404)
        self.assertEqual(self.request("DELETE", "/kv/alpha")[0], 404)

    def test_binary_value_and_escaped_key(self):
        value = bytes(range(16))
        self.assertEqual(self.request("PUT", "/kv/a%20b%2Fc", value)[0], 204)
        self.assertEqual(self.request("GET", "/kv/a%20b%2Fc"), (200, value))

    def test_errors(self):
        self.assertEqual(self.request("PUT", "/kv/big", b"x" * 17)[0], 413)
        self.assertEqual(self.request("GET", "/kv/big")[0], 404)  # connection still usable
        self.assertEqual(self.request("GET", "/kv/")[0], 400)
        self.assertEqual(self.request("GET", "/nope")[0], 404)
        self.assertEqual(self.request("POST", "/kv/x", b"1")[0], 405)

    def test_eviction_and_metrics(self):
        for i in range(5):
            self.assertEqual(self.request("PUT", f"/kv/ev{i}", b"v")[0], 204)
        self.assertEqual(self.request("GET", "/kv/ev0")[0], 404)
        self.assertEqual(self.request("GET", "/kv/ev4")[0], 200)
        text = self.metrics()
        for name, kind in [("kvcache_requests_total", "counter"),
                           ("kvcache_hits_total", "counter"),
                           ("kvcache_misses_total", "counter"),
                           ("kvcache_evictions_total", "counter"),
                           ("kvcache_items", "gauge"),
                           ("kvcache_request_duration_seconds", "histogram")]:
            self.assertIn(f"# TYPE {name} {kind}\n", text)
        self.assertIn('kvcache_requests_total{op="put",code="204"}', text)
        self.assertIn('kvcache_request_duration_seconds_bucket{op="get",le="+Inf"}', text)
        evictions = int(re.search(r"^kvcache_evictions_total (\d+)$", text, re.M).group(1))
        self.assertGreaterEqual(evictions, 2)
        items = int(re.search(r"^kvcache_items (\d+)$", text, re.M).group(1))
        self.assertLessEqual(items, CONFIG["capacity"])

    def test_metrics_exposition_is_well_formed(self):
        self.request("GET", "/healthz")
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="[^"]*",?)*\})? '
                            r'(-?[0-9.eE+-]+|\+Inf|NaN)$')
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                self.assertRegex(line, r"^# (HELP|TYPE) \w+ .+$")
            else:
                self.assertRegex(line, sample)


class ProcessTest(unittest.TestCase):
    """The command line: port 0, the ready line, SIGTERM, config errors."""

    def test_listening_line_and_sigterm(self):
        proc = subprocess.Popen(
            [sys.executable, "-m", "kvcache.server", "--config", "config/cache.json", "--port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
            self.assertIsNotNone(m, f"unexpected first line {line!r}")
            conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=5)
            conn.request("GET", "/healthz")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=5), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_bad_config_exits_2_with_a_clear_error(self):
        missing = os.path.join(ROOT, "config", "does-not-exist.json")
        res = subprocess.run([sys.executable, "-m", "kvcache.server", "--config", missing],
                             cwd=ROOT, capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 2)
        self.assertIn("invalid configuration", res.stderr)
        self.assertIn("does-not-exist.json", res.stderr)


if __name__ == "__main__":
    unittest.main()
