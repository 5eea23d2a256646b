"""LRU cache with a per-entry time to live, plus configuration loading."""

import json
import threading
import time
from collections import OrderedDict

# Configuration keys and their constraints: name -> (minimum, maximum or None).
CONFIG_KEYS = {
    "capacity": (1, None),
    "ttl_seconds": (0, None),  # 0 means entries never expire
    "max_value_bytes": (1, None),
    "port": (0, 65535),  # 0 picks a free port
}


class ConfigError(ValueError):
    """The configuration file is missing, malformed or out of range."""


def validate_config(data, source="config"):
    """Check a parsed configuration; return it as a new dict or raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s): {', '.join(unknown)}; "
                          f"allowed: {', '.join(CONFIG_KEYS)}")
    out = {}
    for key, (low, high) in CONFIG_KEYS.items():
        if key not in data:
            raise ConfigError(f"{source}: missing key '{key}'")
        value = data[key]
        # bool is a subclass of int; reject it explicitly.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: '{key}' must be a number, got {json.dumps(value)}")
        if key != "ttl_seconds" and not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {json.dumps(value)}")
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"{source}: '{key}' must be {bound}, got {value}")
        out[key] = value
    return out


def load_config(path):
    """Read and validate a JSON configuration file."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    return validate_config(data, source=str(path))


class LRUCache:
    """A thread-safe LRU cache whose entries expire ttl_seconds after they were set.

    ttl_seconds == 0 disables expiry. `clock` is injectable for tests.
    """

    def __init__(self, capacity, ttl_seconds=0, clock=time.monotonic):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be a positive integer")
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.capacity = capacity
        self.ttl = ttl_seconds
        self._clock = clock
        self._data = OrderedDict()  # key -> (value, expires_at or None)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    def _expired(self, expires_at, now):
        return expires_at is not None and now >= expires_at

    def get(self, key):
        """Return the value for key, or None on a miss (absent or expired)."""
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                value, expires_at = entry
                if not self._expired(expires_at, self._clock()):
                    self._data.move_to_end(key)
                    self.hits += 1
                    return value
                del self._data[key]
                self.expirations += 1
            self.misses += 1
            return None

    def set(self, key, value):
        """Store value under key, evicting the least recently used entry if full."""
        with self._lock:
            now = self._clock()
            expires_at = now + self.ttl if self.ttl else None
            if key in self._data:
                self._data.move_to_end(key)
            self._data[key] = (value, expires_at)
            while len(self._data) > self.capacity:
                # Drop the least recently used entry; if it had already expired
                # it counts as an expiration rather than an eviction.
                _, (_, oldest_exp) = self._data.popitem(last=False)
                if self._expired(oldest_exp, now):
                    self.expirations += 1
                else:
                    self.evictions += 1

    def delete(self, key):
        """Remove key; return True if it was present and live."""
        with self._lock:
            entry = self._data.pop(key, None)
            if entry is None:
                return False
            return not self._expired(entry[1], self._clock())

    def __len__(self):
        with self._lock:
            return len(self._data)

    def purge_expired(self):
        """Drop every expired entry; return how many were dropped."""
        with self._lock:
            now = self._clock()
            dead = [k for k, (_, exp) in self._data.items() if self._expired(exp, now)]
            for k in dead:
                del self._data[k]
            self.expirations += len(dead)
            return len(dead)

    def stats(self):
        with self._lock:
            return {
                "items": len(self._data),
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "expirations": self.expirations,
            }
