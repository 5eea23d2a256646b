#!/usr/bin/env python3
"""Validates ATIF documents against Ratchet's schema (docs/atif-schema.json).

usage: validate-atif.py SCHEMA FILE...   each FILE holds one JSON document, or JSONL (one a line).
Prints one line per invalid document and exits 1 when any is invalid (2 when none was read).
Beside the schema, two rules of Harbor's Trajectory model that JSON Schema cannot state:
step ids run 1, 2, 3, ... and an observation's source_call_id names a tool call of its step.
"""
import json
import sys

import jsonschema


def documents(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        yield json.loads(text)
    except json.JSONDecodeError:
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield json.loads(line)


def cross_reference_errors(document):
    """Harbor's Trajectory.validate_step_ids and validate_tool_call_references."""
    steps = document.get("steps") if isinstance(document, dict) else None
    if not isinstance(steps, list):
        return []
    errors = []
    for position, step in enumerate(steps, 1):
        if not isinstance(step, dict):
            continue
        if step.get("step_id") != position:
            errors.append(f"step_id {step.get('step_id')!r} where {position} was expected at steps/{position - 1}")
        calls = {call.get("tool_call_id") for call in step.get("tool_calls") or [] if isinstance(call, dict)}
        for result in (step.get("observation") or {}).get("results") or []:
            source = result.get("source_call_id") if isinstance(result, dict) else None
            if source is not None and source not in calls:
                errors.append(f"source_call_id {source!r} names no tool call of its step at steps/{position - 1}")
    return errors


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as handle:
        schema = json.load(handle)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    count, invalid = 0, 0
    for path in sys.argv[2:]:
        for document in documents(path):
            count += 1
            errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
            messages = [f"{error.message} at {'/'.join(map(str, error.path))}" for error in errors]
            messages += cross_reference_errors(document) if not errors else []
            if messages:
                invalid += 1
                print(f"{path}: document {count}: {messages[0]}")
    print(f"{count} document(s), {invalid} invalid")
    return 2 if count == 0 else (1 if invalid else 0)


if __name__ == "__main__":
    sys.exit(main())
