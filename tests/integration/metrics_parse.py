#!/usr/bin/env python3
"""Parses a Prometheus text exposition with the reference parser (Debian python3-prometheus-client:
prometheus_client.parser.text_string_to_metric_families) and prints it as JSON for the C++ tests:

    {"types": {"<family>": "counter", ...},
     "samples": {"<name>{<k>=\"<v>\",...}": <value>, ...}}

Labels are sorted by name; a sample without labels is just its name. Reads the exposition from the
file named as the only argument ("-": stdin). A text the parser refuses exits 1 with its error.
"""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def key(name, labels):
    if not labels:
        return name
    inner = ",".join(f'{k}="{labels[k]}"' for k in sorted(labels))
    return f"{name}{{{inner}}}"


def main(argv):
    if len(argv) != 2:
        print("usage: metrics_parse.py FILE|-", file=sys.stderr)
        return 2
    text = sys.stdin.read() if argv[1] == "-" else open(argv[1], encoding="utf-8").read()
    types, samples = {}, {}
    try:
        for fam in text_string_to_metric_families(text):
            types[fam.name] = fam.type
            for s in fam.samples:
                k = key(s.name, s.labels)
                if k in samples:
                    raise ValueError(f"duplicate sample {k}")
                samples[k] = s.value
    except Exception as e:  # the parser raises ValueError and friends on bad input
        print(f"metrics_parse: {e}", file=sys.stderr)
        return 1
    json.dump({"types": types, "samples": samples}, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
