#!/usr/bin/env bash
# Secrets scan of every tracked file with detect-secrets. Findings already reviewed are
# recorded in .secrets.baseline (test vectors such as the fake keys the DLP corpus is
# built from); any finding not in it fails the run. Findings are matched by file, type
# and secret hash, not line number, so unrelated edits do not fail the scan.
# After reviewing a new finding: .venv/bin/python scripts/secrets-baseline.py
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z -- . ":!.secrets.baseline" | xargs -0 .venv/bin/detect-secrets scan > .venv/secrets-scan.json
.venv/bin/python - <<'PY'
import json, sys
known = json.load(open(".secrets.baseline"))["results"]
found = json.load(open(".venv/secrets-scan.json"))["results"]
key = lambda f, i: (f, i["type"], i["hashed_secret"])
reviewed = {key(f, i) for f, items in known.items() for i in items}
new = [(f, i["line_number"], i["type"]) for f, items in found.items() for i in items
       if key(f, i) not in reviewed]
for f, line, kind in new:
    print(f"detect-secrets: {f}:{line}: {kind} (not in .secrets.baseline)")
print(f"detect-secrets: {sum(len(v) for v in found.values())} findings, {len(new)} unreviewed")
sys.exit(1 if new else 0)
PY
