"""Fetches a node's /metrics and parses it with prometheus_client's text-format parser.

Usage: metrics_scrape.py --url http://127.0.0.1:PORT/metrics

Prints one JSON object: {"families": {name: {"type": TYPE, "samples": [[sample name, {labels}, value], ...]}},
"content_type": ...}. A body the parser rejects ends the script with status 1 and the parser's error.
"""

import argparse
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    with urllib.request.urlopen(args.url, timeout=15) as response:
        content_type = response.headers.get("Content-Type", "")
        body = response.read().decode("utf-8")
    families = {}
    try:
        for family in text_string_to_metric_families(body):
            families[family.name] = {
                "type": family.type,
                "samples": [[sample.name, dict(sample.labels), sample.value] for sample in family.samples],
            }
    except Exception as error:  # the parser's own exceptions vary by version
        sys.exit(f"unparsable exposition: {error}\n{body}")
    sys.stdout.write(json.dumps({"families": families, "content_type": content_type}) + "\n")


if __name__ == "__main__":
    main()
