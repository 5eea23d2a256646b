"""The job kinds batch-worker runs, and config loading.

A job is a JSON object {"id": STR, "op": OP, "payload": ...}; its result is
{"id": STR, "ok": true, "result": ...} or {"id": STR, "ok": false, "error": STR}.

    sum        payload: list of numbers       result: their sum
    sha256     payload: string                result: hex digest of its UTF-8 bytes
    wordcount  payload: string                result: number of whitespace-separated words
    sort       payload: list of numbers       result: the list sorted ascending
"""

import hashlib
import json

OPS = ("sum", "sha256", "wordcount", "sort")


class ConfigError(ValueError):
    """config/worker.json is missing a key or has a bad value."""


def load_config(path):
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    for key, low, high in (("batch_size", 1, 10000), ("threads", 1, 64), ("max_payload_bytes", 16, 1 << 24)):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{path}: {key} must be an integer between {low} and {high}, got {value!r}")
    unknown = set(config) - {"batch_size", "threads", "max_payload_bytes"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}")
    return config


def run_job(job, max_payload_bytes):
    """Run one job; never raises for bad input: returns an error result instead."""
    job_id = job.get("id") if isinstance(job, dict) else None
    if not isinstance(job_id, str):
        return {"id": None, "ok": False, "error": "job has no string id"}
    op, payload = job.get("op"), job.get("payload")
    if len(json.dumps(payload)) > max_payload_bytes:
        return {"id": job_id, "ok": False, "error": "payload too large"}
    try:
        if op == "sum":
            result = sum(_numbers(payload))
        elif op == "sha256":
            result = hashlib.sha256(_text(payload).encode("utf-8")).hexdigest()
        elif op == "wordcount":
            result = len(_text(payload).split())
        elif op == "sort":
            result = sorted(_numbers(payload))
        else:
            return {"id": job_id, "ok": False, "error": f"unknown op {op!r}"}
    except TypeError as exc:
        return {"id": job_id, "ok": False, "error": str(exc)}
    return {"id": job_id, "ok": True, "result": result}


def _numbers(payload):
    if not isinstance(payload, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in payload):
        raise TypeError("payload must be a list of numbers")
    return payload


def _text(payload):
    if not isinstance(payload, str):
        raise TypeError("payload must be a string")
    return payload
