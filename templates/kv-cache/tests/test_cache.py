"""Unit tests of the LRU/TTL cache and of configuration loading."""

import json
import os
import sys
import tempfile
import threading
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kvcache.cache import ConfigError, LRUCache, load_config, validate_config  # noqa: E402

CONFIG_PATH = os.path.join(ROOT, "config", "cache.json")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class LRUCacheTest(unittest.TestCase):
    def test_get_set_delete(self):
        c = LRUCache(4)
        self.assertIsNone(c.get("a"))
        c.set("a", b"1")
        self.assertEqual(c.get("a"), b"1")
        c.set("a", b"2")
        self.assertEqual(c.get("a"), b"2")
        self.assertEqual(len(c), 1)
        self.assertTrue(c.delete("a"))
        self.assertFalse(c.delete("a"))
        self.assertIsNone(c.get("a"))
        self.assertEqual(c.stats()["hits"], 2)
        self.assertEqual(c.stats()["misses"], 2)

    def test_evicts_least_recently_used(self):
        c = LRUCache(2)
        c.set("a", b"1")
        c.set("b", b"2")
        c.get("a")  # a is now the most recently used
        c.set("c", b"3")  # evicts b
        self.assertIsNone(c.get("b"))
        self.assertEqual(c.get("a"), b"1")
        self.assertEqual(c.get("c"), b"3")
        self.assertEqual(c.stats()["evictions"], 1)
        self.assertEqual(len(c), 2)

    def test_overwrite_refreshes_recency(self):
        c = LRUCache(2)
        c.set("a", b"1")
        c.set("b", b"2")
        c.set("a", b"1b")
        c.set("c", b"3")  # evicts b, not a
        self.assertEqual(c.get("a"), b"1b")
        self.assertIsNone(c.get("b"))

    def test_ttl_expiry(self):
        clock = FakeClock()
        c = LRUCache(4, ttl_seconds=10, clock=clock)
        c.set("a", b"1")
        clock.now += 9.9
        self.assertEqual(c.get("a"), b"1")
        clock.now += 0.1
        self.assertIsNone(c.get("a"))
        self.assertEqual(len(c), 0)
        self.assertEqual(c.stats()["expirations"], 1)

    def test_set_restarts_ttl(self):
        clock = FakeClock()
        c = LRUCache(4, ttl_seconds=10, clock=clock)
        c.set("a", b"1")
        clock.now += 8
        c.set("a", b"2")
        clock.now += 8
        self.assertEqual(c.get("a"), b"2")

    def test_zero_ttl_never_expires(self):
        clock = FakeClock()
        c = LRUCache(4, ttl_seconds=0, clock=clock)
        c.set("a", b"1")
        clock.now += 10 ** 9
        self.assertEqual(c.get("a"), b"1")

    def test_purge_expired_and_expired_lru_is_not_an_eviction(self):
        clock = FakeClock()
        c = LRUCache(2, ttl_seconds=5, clock=clock)
        c.set("a", b"1")
        clock.now += 6
        c.set("b", b"2")
        c.set("c", b"3")  # drops expired a
        self.assertEqual(c.stats()["evictions"], 0)
        self.assertEqual(c.stats()["expirations"], 1)
        clock.now += 6
        self.assertEqual(c.purge_expired(), 2)
        self.assertEqual(len(c), 0)

    def test_rejects_bad_arguments(self):
        for bad in (0, -1, 1.5, True, "3"):
            with self.assertRaises(ValueError):
                LRUCache(bad)
        with self.assertRaises(ValueError):
            LRUCache(1, ttl_seconds=-1)

    def test_thread_safety(self):
        c = LRUCache(64)

        def work(n):
            for i in range(500):
                c.set(f"{n}-{i % 100}", b"x")
                c.get(f"{n}-{(i * 7) % 100}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertLessEqual(len(c), 64)
        s = c.stats()
        self.assertEqual(s["hits"] + s["misses"], 2000)


class ConfigTest(unittest.TestCase):
    GOOD = {"capacity": 10, "ttl_seconds": 0, "max_value_bytes": 100, "port": 0}

    def test_shipped_config_is_valid(self):
        """config/cache.json is what an agent edits: it must stay loadable and sane."""
        cfg = load_config(CONFIG_PATH)
        self.assertIsInstance(cfg["capacity"], int)
        self.assertGreater(cfg["capacity"], 0)
        self.assertGreaterEqual(cfg["ttl_seconds"], 0)
        self.assertGreater(cfg["max_value_bytes"], 0)
        self.assertTrue(0 < cfg["port"] < 65536, "the service needs a fixed port for scraping")

    def test_shipped_config_is_formatted(self):
        """Pretty-printed with a 2-space indent and a trailing newline, so diffs stay small."""
        with open(CONFIG_PATH, encoding="utf-8") as fh:
            text = fh.read()
        self.assertEqual(text, json.dumps(json.loads(text), indent=2) + "\n")

    def test_valid(self):
        self.assertEqual(validate_config(dict(self.GOOD)), self.GOOD)
        self.assertEqual(validate_config(dict(self.GOOD, ttl_seconds=1.5))["ttl_seconds"], 1.5)

    def test_invalid(self):
        cases = {
            "missing key 'capacity'": {k: v for k, v in self.GOOD.items() if k != "capacity"},
            "unknown key(s): colour": dict(self.GOOD, colour="red"),
            "'capacity' must be >= 1": dict(self.GOOD, capacity=0),
            "'capacity' must be an integer": dict(self.GOOD, capacity=2.5),
            "'capacity' must be a number": dict(self.GOOD, capacity="10"),
            "'ttl_seconds' must be >= 0": dict(self.GOOD, ttl_seconds=-1),
            "'port' must be between 0 and 65535": dict(self.GOOD, port=70000),
            "'max_value_bytes' must be a number": dict(self.GOOD, max_value_bytes=True),
        }
        for message, data in cases.items():
            with self.subTest(message):
                with self.assertRaises(ConfigError) as ctx:
                    validate_config(data)
                self.assertIn(message, str(ctx.exception))
        with self.assertRaises(ConfigError):
            validate_config([1, 2])

    def test_load_errors_name_the_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.json")
            with open(path, "w") as fh:
                fh.write('{"capacity": 1,\n')
            with self.assertRaises(ConfigError) as ctx:
                load_config(path)
            self.assertIn("bad.json", str(ctx.exception))
            self.assertIn("invalid JSON", str(ctx.exception))
            with self.assertRaises(ConfigError) as ctx:
                load_config(os.path.join(d, "absent.json"))
            self.assertIn("cannot read", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
