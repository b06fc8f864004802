"""``secops scan``: the scanning engine as a command.

Without ``--local`` the files are uploaded to the API and scanned by the workers
(``secops.cli.scan_remote``), with a progress display and the same output and exit
status. Local mode (``--local``) scans in-process with :class:`secops.scanning.Scanner`; it is
the very code path a worker runs, minus storage. Output contract (docs/scanning.md):

* ``--json``: one JSON object per file per line, in argument order (directories walked
  recursively, sorted): ``{"path", "sha256", "size", "mime", "verdict", "findings"}``.
  A file that cannot be read gets ``{"path": ..., "error": "..."}`` instead and the
  run goes on.
* without ``--json``: a table with one row per file and its findings beneath it.
* exit status: 0 every file clean; 1 any file suspicious or malicious; 2 usage error,
  internal error, or any per-file error (an incomplete run is never reported as clean,
  and 2 wins over 1 so a pipeline notices that something was not scanned).
* ``--baseline FILE``: findings the baseline file suppresses (its ``scan`` entries: the
  content's SHA-256, a rule, a path pattern) are left out and the verdict follows from
  the rest; with ``--update-baseline --reason TEXT`` every finding of the run is added to
  FILE instead (made when missing) and the exit status is 0 unless a file failed.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from secops.scanning import FileResult, RulesError, ScanConfig, Scanner, Verdict

if TYPE_CHECKING:  # the baseline code is imported only when a baseline is given
    from secops.dlp.baseline import Baseline

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"internal error: {type(exc).__name__}: {exc}"


def _table_row(result: FileResult) -> str:
    return (f"{result.verdict.value.upper():<10} {result.size:>12} "
            f"{result.mime[:32]:<32} {len(result.findings):>3}  {result.path}")


def run_local(
    paths: Iterable[str],
    *,
    as_json: bool,
    config: ScanConfig | None = None,
    workers: int | None = None,
    out: IO[str] | None = None,
    baseline: Baseline | None = None,
    accept: str | None = None,
) -> int:
    """Scan ``paths`` in-process, print results, and return the exit status. Findings
    ``baseline`` suppresses are left out; with ``accept`` (a reason) every finding left
    is added to ``baseline`` instead of counting as found."""
    stream = out if out is not None else sys.stdout
    rules = baseline.rules() if baseline is not None else []
    scanner = Scanner(config)
    status = EXIT_CLEAN
    counts = {"clean": 0, "suspicious": 0, "malicious": 0, "error": 0}
    if not as_json:
        stream.write(f"{'VERDICT':<10} {'SIZE':>12} {'MIME':<32} {'#':>3}  PATH\n")
    # Worker processes rather than threads when this is the ``secops`` command: it owns
    # its process, and forked workers also run the Python parts of the checks in parallel.
    import secops.cli

    outcomes = scanner.scan_paths(paths, workers=workers or default_workers(),
                                  processes=secops.cli.RUNNING_AS_COMMAND)
    for path, outcome in outcomes:
        if isinstance(outcome, BaseException):
            counts["error"] += 1
            status = EXIT_ERROR
            if as_json:
                stream.write(json.dumps({"path": path, "error": _error_text(outcome)}) + "\n")
            else:
                stream.write(f"{'ERROR':<10} {'-':>12} {'-':<32} {'-':>3}  {path}: "
                             f"{_error_text(outcome)}\n")
            continue
        if rules:
            from secops.dlp.baseline import filter_scan

            outcome, _ = filter_scan(outcome, rules, path)
        if baseline is not None and accept is not None:
            from secops.cli.dlp import accept_into

            for rule_id in sorted({f.id for f in outcome.findings}):
                accept_into(baseline, {"family": "scan", "sha256": outcome.sha256,
                                       "detector": rule_id, "path_pattern": glob.escape(path),
                                       "reason": accept})
            outcome.findings = []
        verdict = outcome.verdict
        counts[verdict.value] += 1
        if verdict is not Verdict.CLEAN and status == EXIT_CLEAN:
            status = EXIT_FOUND
        if as_json:
            stream.write(json.dumps(outcome.to_dict()) + "\n")
        else:
            stream.write(_table_row(outcome) + "\n")
            for finding in outcome.findings:
                where = f" @ {finding.location}" if finding.location else ""
                stream.write(f"    [{finding.severity.label}] {finding.id}: "
                             f"{finding.description}{where}\n")
    if not as_json:
        total = sum(counts.values())
        stream.write(f"{total} files: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                     + f"; rules {scanner.ruleset_version[:12]}\n")
    stream.flush()
    return status


@click.command("scan")
@click.option("--local", is_flag=True, help="Scan in this process (no API, no broker).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file per line.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Files scanned in parallel in local mode (default: CPUs, at most 4).")
@click.option("--rules-dir", "rule_dirs", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Extra YARA rule directory (repeatable), added to the bundled rules.")
@click.option("--blocklist", "blocklists", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="File of SHA-256 or MD5 digests, one per line (repeatable).")
@click.option("--rescan", is_flag=True, help="Through the API: ignore cached verdicts.")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Through the API: seconds to wait for the workers.")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False),
              help="Local: baseline file whose scan entries suppress findings (docs/dlp.md).")
@click.option("--update-baseline", is_flag=True,
              help="Local: add every finding of this run to the --baseline file.")
@click.option("--reason", help="Why the findings added by --update-baseline are accepted.")
@click.argument("paths", nargs=-1, required=True)
def scan(
    local: bool,
    as_json: bool,
    workers: int | None,
    rule_dirs: tuple[Path, ...],
    blocklists: tuple[Path, ...],
    rescan: bool,
    timeout: float,
    baseline_path: str | None,
    update_baseline: bool,
    reason: str | None,
    paths: tuple[str, ...],
) -> None:
    """Scan files and directories for malware and risky content (through the API, or --local)."""
    if not local:
        if workers or rule_dirs or blocklists or baseline_path or update_baseline:
            raise click.UsageError("--workers, --rules-dir, --blocklist and --baseline need "
                                   "--local (the platform's rules, blocklists and suppressions "
                                   "are configured on it)")
        from secops.cli.scan_remote import run_remote

        sys.exit(run_remote(paths, as_json=as_json, rescan=rescan, timeout=timeout))
    # The local contract shows neither libmagic's description nor the MD5, so both are
    # skipped (MD5 is still computed when a blocklist may hold MD5 digests).
    config = ScanConfig(rule_dirs=rule_dirs, sha256_blocklists=blocklists,
                        md5_blocklists=blocklists, describe=False, md5=False)
    baseline = None
    if baseline_path is not None or update_baseline:
        from secops.cli.dlp import open_baseline

        baseline = open_baseline(baseline_path, update_baseline, reason)
    try:
        status = run_local(paths, as_json=as_json, config=config, workers=workers,
                           baseline=baseline, accept=reason if update_baseline else None)
        if update_baseline and baseline is not None and baseline_path is not None:
            from secops.cli.dlp import save_baseline

            save_baseline(baseline, baseline_path)
    except click.UsageError:
        raise  # a full baseline: click's message and exit 2
    except (RulesError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # noqa: BLE001 - contract: internal errors exit 2, no traceback
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(status)
