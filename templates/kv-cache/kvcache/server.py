"""HTTP front end of the kv-cache service.

    python3 -m kvcache.server --config config/cache.json [--port N] [--host 127.0.0.1]

API:
    GET    /kv/KEY    200 with the value as body, or 404
    PUT    /kv/KEY    body is the value; 204 (413 if larger than max_value_bytes)
    DELETE /kv/KEY    204 if it was present, else 404
    GET    /healthz   200 "ok"
    GET    /metrics   Prometheus text exposition format 0.0.4

Once the socket listens, one line `listening on HOST:PORT` is printed to stdout.
SIGTERM and SIGINT stop the server cleanly (exit status 0).
"""

import argparse
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from .cache import ConfigError, LRUCache, load_config

KV_PREFIX = "/kv/"
# Upper bounds (seconds) of the request duration histogram buckets.
# Oversized request bodies up to this size are read and dropped; larger ones close the connection.
DRAIN_LIMIT = 16 * 1024 * 1024
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _fmt(value):
    """Format a sample value the way Prometheus expects."""
    if value == float("inf"):
        return "+Inf"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


class Metrics:
    """Request counters and a latency histogram, rendered as Prometheus text."""

    def __init__(self, buckets=DURATION_BUCKETS):
        self._lock = threading.Lock()
        self._buckets = tuple(buckets)
        self._requests = {}  # (op, code) -> count
        self._hist = {}  # op -> [bucket counts..., sum, count]

    def observe(self, op, code, seconds):
        with self._lock:
            key = (op, str(code))
            self._requests[key] = self._requests.get(key, 0) + 1
            h = self._hist.get(op)
            if h is None:
                h = self._hist[op] = [0] * len(self._buckets) + [0.0, 0]
            for i, upper in enumerate(self._buckets):
                if seconds <= upper:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self, cache):
        stats = cache.stats()
        out = []

        def family(name, kind, help_text):
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("kvcache_requests_total", "counter", "HTTP requests by operation and status code.")
            for (op, code), n in sorted(self._requests.items()):
                out.append(f'kvcache_requests_total{{op="{op}",code="{code}"}} {n}')
            family("kvcache_request_duration_seconds", "histogram",
                   "Time to handle a request, by operation.")
            for op, h in sorted(self._hist.items()):
                for i, upper in enumerate(self._buckets):
                    out.append(f'kvcache_request_duration_seconds_bucket{{op="{op}",le="{_fmt(upper)}"}} {h[i]}')
                out.append(f'kvcache_request_duration_seconds_bucket{{op="{op}",le="+Inf"}} {h[-1]}')
                out.append(f'kvcache_request_duration_seconds_sum{{op="{op}"}} {_fmt(h[-2])}')
                out.append(f'kvcache_request_duration_seconds_count{{op="{op}"}} {h[-1]}')
        family("kvcache_hits_total", "counter", "GETs that found a live entry.")
        out.append(f"kvcache_hits_total {stats['hits']}")
        family("kvcache_misses_total", "counter", "GETs that found no live entry.")
        out.append(f"kvcache_misses_total {stats['misses']}")
        family("kvcache_evictions_total", "counter", "Live entries evicted to respect capacity.")
        out.append(f"kvcache_evictions_total {stats['evictions']}")
        family("kvcache_expirations_total", "counter", "Entries dropped because their TTL passed.")
        out.append(f"kvcache_expirations_total {stats['expirations']}")
        family("kvcache_items", "gauge", "Entries currently held (including not yet purged expired ones).")
        out.append(f"kvcache_items {stats['items']}")
        family("kvcache_capacity", "gauge", "Configured maximum number of entries.")
        out.append(f"kvcache_capacity {cache.capacity}")
        return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response sets Content-Length
    server_version = "kvcache/0.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body
    # waits for the client's delayed ACK (~40 ms on Linux) on a keep-alive connection.
    disable_nagle_algorithm = True

    # --- plumbing -------------------------------------------------------------

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def _send(self, code, body=b"", content_type="text/plain; charset=utf-8"):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(code)
        if code != 204:  # a 204 carries neither a body nor Content-Length (RFC 9110)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self._code = code

    def _timed(self, op, fn):
        start = time.perf_counter()
        self._code = 500
        try:
            fn()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # never let one request kill the worker silently
            sys.stderr.write(f"kvcache: internal error on {self.command} {self.path}: {exc!r}\n")
            try:
                self._send(500, "internal error\n")
            except OSError:
                self.close_connection = True
        finally:
            self.server.metrics.observe(op, self._code, time.perf_counter() - start)

    def _key(self):
        path = self.path.split("?", 1)[0]
        if not path.startswith(KV_PREFIX):
            return None
        return unquote(path[len(KV_PREFIX):])

    def _route(self):
        path = self.path.split("?", 1)[0]
        if path.startswith(KV_PREFIX):
            return "kv"
        if path == "/healthz":
            return "healthz"
        if path == "/metrics":
            return "metrics"
        return None

    def _read_body(self, limit):
        """Return the request body, or None after having sent an error response."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send(411, "chunked bodies are not supported; send Content-Length\n")
            return None
        if length is None:
            self.close_connection = True
            self._send(411, "Content-Length required\n")
            return None
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send(400, "bad Content-Length\n")
            return None
        if n > limit:
            if n <= DRAIN_LIMIT:
                self._drain(n)  # keep the connection usable
            else:
                self.close_connection = True
            self._send(413, f"value larger than max_value_bytes ({limit})\n")
            return None
        return self.rfile.read(n)

    def _drain(self, n):
        while n > 0:
            chunk = self.rfile.read(min(n, 65536))
            if not chunk:
                break
            n -= len(chunk)

    # --- methods --------------------------------------------------------------

    def do_GET(self):  # noqa: N802
        route = self._route()
        if route == "healthz":
            self._timed("healthz", lambda: self._send(200, "ok\n"))
        elif route == "metrics":
            self._timed("metrics", lambda: self._send(
                200, self.server.metrics.render(self.server.cache),
                "text/plain; version=0.0.4; charset=utf-8"))
        elif route == "kv":
            self._timed("get", self._get)
        else:
            self._timed("other", lambda: self._send(404, "not found\n"))

    do_HEAD = do_GET

    def do_PUT(self):  # noqa: N802
        if self._route() != "kv":
            self.close_connection = True
            return self._timed("other", lambda: self._send(405, "method not allowed\n"))
        self._timed("put", self._put)

    def do_DELETE(self):  # noqa: N802
        if self._route() != "kv":
            return self._timed("other", lambda: self._send(405, "method not allowed\n"))
        self._timed("delete", self._delete)

    def do_POST(self):  # noqa: N802
        self.close_connection = True
        self._timed("other", lambda: self._send(405, "method not allowed\n"))

    def _get(self):
        key = self._key()
        if not key:
            return self._send(400, "empty key\n")
        value = self.server.cache.get(key)
        if value is None:
            return self._send(404, "not found\n")
        self._send(200, value, "application/octet-stream")

    def _put(self):
        key = self._key()
        if not key:
            self.close_connection = True
            return self._send(400, "empty key\n")
        body = self._read_body(self.server.config["max_value_bytes"])
        if body is None:
            return
        self.server.cache.set(key, body)
        self._send(204)

    def _delete(self):
        key = self._key()
        if not key:
            return self._send(400, "empty key\n")
        self._send(204 if self.server.cache.delete(key) else 404)


class KVServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, config, verbose=False):
        self.config = config
        self.cache = LRUCache(config["capacity"], config["ttl_seconds"])
        self.metrics = Metrics()
        self.verbose = verbose
        super().__init__(address, Handler)


def make_server(config, host="127.0.0.1", port=None, verbose=False):
    """Create (bind and listen) a server; port None means the configured port."""
    return KVServer((host, config["port"] if port is None else port), config, verbose)


def _purge_loop(server, stop, interval):
    while not stop.wait(interval):
        server.cache.purge_expired()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m kvcache.server",
                                     description="In-memory LRU key-value cache with TTL over HTTP.")
    parser.add_argument("--config", default="config/cache.json", help="JSON config file")
    parser.add_argument("--port", type=int, default=None,
                        help="port to listen on (default: from config; 0 picks a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"kvcache: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        server = make_server(config, args.host, args.port, args.verbose)
    except OSError as exc:
        port = config["port"] if args.port is None else args.port
        print(f"kvcache: cannot listen on {args.host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    def stop(signum, _frame):
        # shutdown() waits for serve_forever() to return, so it must not run on the
        # main thread, which is the one inside serve_forever().
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    stop_purge = threading.Event()
    if config["ttl_seconds"]:
        interval = min(max(config["ttl_seconds"] / 2, 1.0), 60.0)
        threading.Thread(target=_purge_loop, args=(server, stop_purge, interval), daemon=True).start()

    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        stop_purge.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
