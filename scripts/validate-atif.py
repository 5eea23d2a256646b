#!/usr/bin/env python3
"""Validates ATIF documents against Ratchet's schema (docs/atif-schema.json).

usage: validate-atif.py SCHEMA FILE...   each FILE holds one JSON document, or JSONL (one a line).
Prints one line per invalid document and exits 1 when any is invalid (2 when none was read).
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
            if errors:
                invalid += 1
                first = errors[0]
                print(f"{path}: document {count}: {first.message} at {'/'.join(map(str, first.path))}")
    print(f"{count} document(s), {invalid} invalid")
    return 2 if count == 0 else (1 if invalid else 0)


if __name__ == "__main__":
    sys.exit(main())
