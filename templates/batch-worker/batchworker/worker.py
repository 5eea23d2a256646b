"""The worker process: jobs in on stdin, results out on stdout, one JSON object per line.

    python3 -m batchworker.worker --config config/worker.json

Jobs are queued and run in batches of `batch_size` on `threads` threads; a batch is also
run when a control line {"flush": true} arrives, which is answered with {"flushed": N}
(N = results written so far) after the batch's results. At end of input the remaining
jobs run and the process exits 0. A line that is not JSON gets an error result with id
null. Counters are written in Prometheus text format to --metrics FILE on exit when given.
SIGTERM stops it cleanly after the current batch.
"""

import argparse
import json
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from .jobs import ConfigError, load_config, run_job


class Worker:
    def __init__(self, config, out):
        self.config = config
        self.out = out
        self.pool = ThreadPoolExecutor(max_workers=config["threads"])
        self.queue = []
        self.written = 0
        self.failed = 0
        self.batches = 0
        self.busy_seconds = 0.0

    def submit(self, job):
        self.queue.append(job)
        if len(self.queue) >= self.config["batch_size"]:
            self.run_batch()

    def run_batch(self):
        if not self.queue:
            return
        batch, self.queue = self.queue, []
        start = time.perf_counter()
        limit = self.config["max_payload_bytes"]
        results = list(self.pool.map(lambda job: run_job(job, limit), batch))
        for result in results:
            self.out.write(json.dumps(result, separators=(",", ":")) + "\n")
            self.failed += not result["ok"]
        self.out.flush()
        self.written += len(results)
        self.batches += 1
        self.busy_seconds += time.perf_counter() - start

    def metrics(self):
        return (f"# TYPE batchworker_jobs_total counter\nbatchworker_jobs_total {self.written}\n"
                f"# TYPE batchworker_jobs_failed_total counter\nbatchworker_jobs_failed_total {self.failed}\n"
                f"# TYPE batchworker_batches_total counter\nbatchworker_batches_total {self.batches}\n"
                f"# TYPE batchworker_busy_seconds_total counter\nbatchworker_busy_seconds_total {self.busy_seconds:.6f}\n")


class Stop(Exception):
    pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/worker.json")
    parser.add_argument("--metrics", help="write Prometheus counters here on exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, ValueError, ConfigError) as exc:
        print(f"batchworker: {exc}", file=sys.stderr)
        return 2

    def stop(_signum, _frame):
        raise Stop()

    signal.signal(signal.SIGTERM, stop)
    worker = Worker(config, sys.stdout)
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                job = json.loads(line)
            except ValueError:
                worker.submit({"id": None})
                continue
            if isinstance(job, dict) and job.get("flush") is True:
                worker.run_batch()
                sys.stdout.write(json.dumps({"flushed": worker.written}) + "\n")
                sys.stdout.flush()
                continue
            worker.submit(job)
        worker.run_batch()
    except Stop:
        pass
    finally:
        worker.pool.shutdown(wait=True)
        if args.metrics:
            with open(args.metrics, "w", encoding="utf-8") as f:
                f.write(worker.metrics())
    return 0


if __name__ == "__main__":
    sys.exit(main())
