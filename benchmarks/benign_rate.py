"""Benign rate of the scanner on real files of a system: how many come out clean.

Scans the given paths (directories recursively) with the bundled rules, as
``secops scan --local`` does, and prints the count per verdict, the count per finding id
over the files that are not clean, and one line per non-clean file with its findings.
Files of the operating system's own documentation, images and archives are benign by
assumption; each file that is not clean is then a false positive to explain or remove.

    .venv/bin/python benchmarks/benign_rate.py /usr/share [--list FILE] [--workers 2]

``--list`` adds the paths named in a file (one per line), for documents and archives
that live elsewhere (PDFs, JARs, wheels, zip files).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

from secops.scanning import ScanConfig, Scanner, Verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--list", dest="lists", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    paths = list(args.paths)
    for name in args.lists:
        with open(name, encoding="utf-8") as handle:
            paths.extend(line.strip() for line in handle if line.strip())
    scanner = Scanner(ScanConfig(describe=False, md5=False))
    verdicts: collections.Counter[str] = collections.Counter()
    finding_ids: collections.Counter[str] = collections.Counter()
    flagged: list[str] = []
    errors = 0
    size = 0
    started = time.perf_counter()
    for path, outcome in scanner.scan_paths(paths, workers=args.workers, processes=True):
        if isinstance(outcome, Exception):
            errors += 1
            continue
        size += outcome.size
        verdicts[outcome.verdict.value] += 1
        if outcome.verdict is not Verdict.CLEAN:
            notable = sorted({f"{f.id}@{f.location or '-'}" for f in outcome.findings
                              if f.severity >= 2})
            finding_ids.update({f.id for f in outcome.findings if f.severity >= 2})
            flagged.append(f"{outcome.verdict.value}\t{path}\t{' '.join(notable)}")
    elapsed = time.perf_counter() - started
    total = sum(verdicts.values())
    print(f"files {total}  bytes {size}  errors {errors}  seconds {elapsed:.0f}")
    for verdict in ("clean", "suspicious", "malicious"):
        share = 100 * verdicts[verdict] / total if total else 0.0
        print(f"{verdict:10} {verdicts[verdict]:7} {share:8.3f}%")
    for finding, count in finding_ids.most_common():
        print(f"  {finding:45} {count}")
    for line in flagged:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
