"""``secops dlp``: the DLP engine as a command.

Local mode (``--local``) runs :class:`secops.dlp.Classifier` in-process, the same code a
worker runs. Output contract (docs/dlp.md):

* ``scan --json``: one JSON object per file per line, in argument order (directories
  walked recursively, sorted): ``{"path", "classification", "findings": [{"type",
  "category", "start", "end", "score"}]}``; offsets are character offsets into the
  file's text decoded as UTF-8 without newline translation; exactly these keys, for every
  format. Where a finding sits (archive member, page, attachment) is in the readable
  report and in the platform's stored findings. A file read only in part (an archive
  limit, a damaged member) prints its findings and a one-line warning on stderr, and
  makes the exit status 2; a file that cannot be read at all gets
  ``{"path": ..., "error": "..."}`` and the run goes on. Archives (zip, tar,
  gzip, bzip2, xz, 7z) are expanded with :class:`secops.dlp.archives.SafeArchiveWalker`.
* ``scan`` without ``--json``: a readable report with masked previews, never values.
* ``redact``: the file's text with every finding replaced (``[TYPE]`` or a mask).
* exit status: 0 no findings; 1 findings; 2 usage, per-file error or a file read only in
  part (2 wins over 1).
* ``--baseline FILE``: findings the baseline file suppresses (docs/dlp.md) are left out
  of the output and the exit status; with ``--update-baseline --reason TEXT`` every
  finding of the run is added to FILE (created when missing) and the exit status is 0
  unless a file could not be read.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import click

from secops.dlp import Classifier, DlpError, DocumentResult, Limits, Policy, redact
from secops.dlp.archives import SafeArchiveWalker
from secops.dlp.baseline import Baseline, BaselineError, filter_document
from secops.dlp.baseline import load as baseline_load
from secops.dlp.extract import extract

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
PLATFORM_MODE = ("give --local to run the engine in this process; to classify through the "
                 "platform, use POST /v1/dlp/scans (docs/dlp.md)")


def _files(paths: Iterable[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, DlpError):
        return str(exc)
    return f"internal error: {type(exc).__name__}"


def _local_classifier(policy: Policy | None = None, key: bytes | None = None) -> Classifier:
    """The local command's classifier: archives expanded by the safe walker; with ``key``
    (a baseline's salt) findings carry digests comparable with the baseline's."""
    limits = Limits()
    return Classifier(policy, hmac_key=key, limits=limits,
                      archive_walker=SafeArchiveWalker.from_limits(limits))


def _classifier(policy_paths: tuple[str, ...], key: bytes | None = None,
                types: tuple[str, ...] = ()) -> Classifier:
    try:
        policy = Policy.load(*policy_paths) if policy_paths else None
        if types:
            policy = (policy or Policy.default()).restricted(
                t.strip() for spec in types for t in spec.split(",") if t.strip())
        return _local_classifier(policy, key)
    except (DlpError, OSError) as exc:
        raise click.UsageError(f"policy: {_error_text(exc)}") from None


_TYPES_HELP = ("Only these types, e.g. --types email,credit_card (repeatable; each must be "
               "a type of the policy's packs).")


def _report(result: DocumentResult, out: TextIO) -> None:
    head = f"{result.classification.upper():<13} {len(result.findings):>4} findings  {result.path}"
    out.write(head + ("  [BLOCK]" if result.blocked else "") + "\n")
    for f in result.findings:
        where = f"{f.part}:" if f.part != "text" else ""
        out.write(f"    {f.type:<22} {f.category:<6} {where}{f.start}-{f.end}"
                  f"  score {f.score:.2f}  {f.preview}\n")
    for error in result.errors:
        out.write(f"    note: {error}\n")


def run_scan(paths: Iterable[str], *, as_json: bool, classifier: Classifier | None = None,
             out: TextIO | None = None, baseline: Baseline | None = None,
             accept: str | None = None) -> int:
    """Scan ``paths`` in-process, print results, and return the exit status. Findings
    ``baseline`` suppresses are left out; with ``accept`` (a reason) every finding left
    is added to ``baseline`` instead of counting as found."""
    stream = out if out is not None else sys.stdout
    classifier = classifier or _local_classifier(key=baseline.key if baseline else None)
    rules = baseline.rules() if baseline is not None else []
    status = EXIT_CLEAN
    for path in _files(paths):
        try:
            result = classifier.scan_file(path)
        except Exception as exc:  # noqa: BLE001 - one bad file must not end the run
            status = EXIT_ERROR
            if as_json:
                stream.write(json.dumps({"path": str(path), "error": _error_text(exc)}) + "\n")
            else:
                click.echo(f"error: {path}: {_error_text(exc)}", err=True)
            continue
        result.path = str(path)
        result, _ = filter_document(result, rules, str(path))
        if baseline is not None and accept is not None:
            for f in result.findings:
                accept_into(baseline, {"family": "dlp", "detector": f.type, "digest": f.digest,
                                       "path_pattern": glob.escape(str(path)), "reason": accept})
            result.findings = []
        if as_json:
            stream.write(json.dumps(result.to_dict()) + "\n")
        else:
            _report(result, stream)
        if result.truncated or result.errors:
            status = EXIT_ERROR
            reason = "; ".join(result.errors) or "a limit was reached"
            click.echo(f"warning: {path}: read only in part ({reason})", err=True)
        elif result.findings and status == EXIT_CLEAN:
            status = EXIT_FOUND
    stream.flush()
    return status


@click.group("dlp")
def dlp() -> None:
    """Find and redact personal, card, health and credential data."""


@dlp.command("scan")
@click.option("--local", is_flag=True, help="Run the engine in this process.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file per line.")
@click.option("--policy", "policies", multiple=True, type=click.Path(exists=True),
              help="Extra policy pack file or directory (overrides shipped packs by name).")
@click.option("--types", "types", multiple=True, metavar="TYPE[,TYPE...]", help=_TYPES_HELP)
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False),
              help="Baseline file: leave out the findings it suppresses (docs/dlp.md).")
@click.option("--update-baseline", is_flag=True,
              help="Add every finding of this run to the --baseline file (made if missing).")
@click.option("--reason", help="Why the findings added by --update-baseline are accepted.")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def scan(local: bool, as_json: bool, policies: tuple[str, ...], types: tuple[str, ...],
         baseline_path: str | None, update_baseline: bool, reason: str | None,
         paths: tuple[str, ...]) -> None:
    """Classify files: exit 0 no findings, 1 findings, 2 error."""
    if not local:
        raise click.UsageError(PLATFORM_MODE)
    baseline = open_baseline(baseline_path, update_baseline, reason)
    status = run_scan(paths, as_json=as_json, baseline=baseline,
                      classifier=_classifier(policies, baseline.key if baseline else None, types),
                      accept=reason if update_baseline else None)
    if update_baseline and baseline is not None and baseline_path is not None:
        save_baseline(baseline, baseline_path)
    sys.exit(status)


def open_baseline(path: str | None, update: bool, reason: str | None) -> Baseline | None:
    """The ``--baseline`` file (a new one when updating a file not there yet); usage
    errors for a file that cannot be used or options that do not fit together."""
    if update and (path is None or not reason or len(reason) > 500):
        raise click.UsageError("--update-baseline needs --baseline FILE and --reason TEXT "
                               "(at most 500 characters)")
    if path is None:
        return None
    try:
        return baseline_load(path)
    except BaselineError as exc:
        if update and not os.path.exists(path):
            return Baseline()
        raise click.UsageError(f"baseline: {exc}") from None


def accept_into(baseline: Baseline, entry: dict[str, object]) -> None:
    """Add a finding to the baseline being updated; a full baseline ends the run (exit 2)
    before anything is written, so the file on disk stays as it was."""
    try:
        baseline.add(entry)
    except BaselineError as exc:
        raise click.UsageError(f"baseline: {exc}") from None


def save_baseline(baseline: Baseline, path: str) -> None:
    """Write the file whole or not at all (a temporary file renamed over it)."""
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(baseline.to_json())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@dlp.command("redact")
@click.option("--local", is_flag=True, help="Run the engine in this process.")
@click.option("--style", type=click.Choice(["type", "mask", "policy"]), default="policy",
              show_default=True, help="[TYPE] labels, masks, or what each pack's action says.")
@click.option("--policy", "policies", multiple=True, type=click.Path(exists=True))
@click.option("--types", "types", multiple=True, metavar="TYPE[,TYPE...]", help=_TYPES_HELP)
@click.argument("path", type=click.Path(dir_okay=False))
def redact_cmd(local: bool, style: str, policies: tuple[str, ...], types: tuple[str, ...],
               path: str) -> None:
    """Print the text of PATH with every finding replaced."""
    if not local:
        raise click.UsageError(PLATFORM_MODE)
    classifier = _classifier(policies, types=types)
    try:
        extraction = extract(Path(path).read_bytes(), Path(path).name, classifier.limits,
                             classifier.archive_walker)
        result = classifier.scan_parts(extraction.parts, path=path)
    except Exception as exc:  # noqa: BLE001 - reported as exit status 2
        click.echo(f"error: {path}: {_error_text(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    text = "\n".join(p.text for p in extraction.parts)  # the document text offsets index
    sys.stdout.write(redact(text, result.findings, style))  # type: ignore[arg-type]
    sys.stdout.flush()

