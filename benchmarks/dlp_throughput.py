"""DLP throughput: our engine next to Presidio's predefined pattern recognizers.

Two cases, each scanned with :class:`secops.dlp.Classifier` and then, in the same run,
by Presidio's pattern recognizers (no spaCy model: ``analyze(text, entities,
nlp_artifacts=None)``) over a slice of the same text; it prints MB/s for both and
their ratio:

* sparse: a mixed text (prose, application logs, CSV rows, JSON lines, source code
  and configuration, with sensitive values sprinkled in at about one per 2 kB);
* dense: a customers-table export in CSV, about 10,000 sensitive values per MB
  (:func:`dense_text`). Presidio is also timed without its phone recognizer there,
  next to our engine restricted to the same types (``Policy.restricted``, the CLI's
  ``--types``): e-mail, card, IBAN, IP address and SSN on both sides (equal work).

    python benchmarks/dlp_throughput.py                 # 50 MB + 5 MB dense
    python benchmarks/dlp_throughput.py --rss-gb 1      # also: peak RSS streaming 1 GB

Our engine is timed twice on the same text: pure ``re`` and, when the optional
``hyperscan`` package is installed, with the prefilter (see docs/dlp.md). Before each
timing every object alive is frozen out of the garbage collector (:func:`_settle`), so
no engine's collections walk the heap the other one left.
Everything is generated from a fixed seed, so runs are comparable.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

SECRETS = [
    "card 4111 1111 1111 1111", "pan=5500-0000-0000-0004", "ssn: 536-22-8874",
    "mail jane.roe@acme-corp.io", "call +1 415-555-2671", "iban GB33BUKB20201555555555",
    "client 81.2.69.160", "key=AKIAZ3Q7RWLXMJ5OPQ2B", "NPI 1234567893",
    "token ghp_R8s2kLmN3pQ4tV5wX6yZ7aB8cD9eF0gH1iJ2",
    "postgres://app:Tr0ub4dor3@db.internal:5432/app",
]
WORDS = ("the of and to in is was for on that with as by at from it an be this are "
         "request server file account customer invoice report update service network "
         "policy record value status during between system process result").split()


def _prose(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."


def _log(rng: random.Random, i: int) -> str:
    stamp = f"2026-05-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:{rng.randint(0, 59):02d}"
    return (f"{stamp}.{i % 1000:03d}Z"
            f" INFO  api.request id={rng.getrandbits(64):016x} method=GET path=/v1/items/{i}"
            f" status={rng.choice((200, 201, 404, 500))} took={rng.randint(1, 900)}ms"
            f" sha={rng.getrandbits(160):040x}")


def _csv(rng: random.Random, i: int) -> str:
    return (f"{i},{rng.choice(WORDS)},{rng.randint(1, 99999)},{rng.random() * 1000:.2f},"
            f"2026-0{i % 9 + 1}-1{i % 9},{rng.choice(('open', 'closed'))}")


def _json(rng: random.Random, i: int) -> str:
    return (f'{{"id": {i}, "uuid": "{rng.getrandbits(128):032x}", "name": "{rng.choice(WORDS)}",'
            f' "amount": {rng.random() * 100:.2f}, "version": "1.{i % 20}.{i % 7}"}}')


def _code(rng: random.Random, i: int) -> str:
    return (f"    def handler_{i}(self, request):  # TODO: {rng.choice(WORDS)}\n"
            f"        return self.client.get(f\"/items/{{request.id}}\", timeout={i % 30})")


def mixed_text(megabytes: float, seed: int = 7) -> str:
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    out: list[str] = []
    size = 0
    i = 0
    makers = (_log, _csv, _json, _code)
    while size < target:
        i += 1
        r = rng.random()
        line = _prose(rng) if r < 0.3 else makers[i % 4](rng, i)
        if rng.random() < 0.02:
            line += " " + rng.choice(SECRETS)
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William "
         "Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen").split()
LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
        "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin").split()
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "acme-corp.io", "globex.net", "initech.org")
CITIES = ("Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview")
STREETS = ("Oak Street", "Maple Avenue", "Cedar Lane", "Park Road", "Hill Drive", "Lake View")
AREA_CODES = ("212", "312", "415", "503", "617", "646", "702", "713", "808", "919")


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str(-total % 10)


def _card(rng: random.Random) -> str:
    prefix = rng.choice(("4", "51", "52", "53", "54", "55"))
    return _luhn_complete(prefix + "".join(rng.choices("0123456789", k=15 - len(prefix))))


def _iban(rng: random.Random) -> str:
    bban = rng.choice(("NWBK", "BARC", "LOYD", "HBUK")) + "".join(rng.choices("0123456789", k=14))
    numeric = "".join(str(int(c, 36)) for c in bban + "GB00")
    return f"GB{98 - int(numeric) % 97:02d}{bban}"


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def dense_text(megabytes: float, seed: int = 5) -> str:
    """A customers-table export (CSV): about 10,000 sensitive values per MB.

    Each row holds an e-mail address and a client IP address, and one of a phone
    number, a US SSN, a card number or an IBAN, among identifiers, names, dates and
    amounts that are not sensitive (ids, UUIDs, timestamps, prices, versions).
    """
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    out = ["id,uuid,first_name,last_name,email,city,created_at,updated_at,status,plan,"
           "street,balance,client_ip,payment,app_version,notes"]
    size = len(out[0]) + 1
    i = 0
    while size < target:
        i += 1
        first, last = rng.choice(FIRST), rng.choice(LAST)
        kind = i % 4
        if kind == 0:
            extra = f"+1 {rng.choice(AREA_CODES)}-{rng.randint(201, 989)}-{rng.randint(0, 9999):04d}"
        elif kind == 1:
            extra = _ssn(rng)
        elif kind == 2:
            extra = _card(rng)
        else:
            extra = _iban(rng)
        day = f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d}"
        line = (f"{100000 + i},{rng.getrandbits(128):032x},{first},{last},"
                f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@{rng.choice(DOMAINS)},"
                f"{rng.choice(CITIES)},{day}T{i % 24:02d}:{i % 60:02d}:{rng.randint(0, 59):02d}Z,"
                f"{day} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d},"
                f"{rng.choice(('active', 'suspended', 'closed'))},{rng.choice(('free', 'pro'))},"
                f"{rng.randint(1, 9999)} {rng.choice(STREETS)},{rng.random() * 10000:.2f},"
                f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                f"{rng.randint(1, 254)},{extra},3.{i % 12}.{i % 7},"
                f"\"{' '.join(rng.choices(WORDS, k=rng.randint(9, 19)))}\"")
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


CPU: dict[str, float] = {}
"""CPU seconds of the last timed call of each bench_* function (load-independent)."""


def _settle() -> None:
    """Collect, then freeze every object alive so far out of the garbage collector.

    Both engines are timed in one process after the other's modules and texts are
    loaded (Presidio's import alone adds about 90,000 tracked objects); without this
    each full collection during a timing would also walk the other engine's heap.
    """
    gc.collect()
    gc.freeze()


def bench_ours(text: str, use_prefilter: bool = True,
               types: tuple[str, ...] = ()) -> tuple[float, int]:
    """Our engine with the shipped policy, or only ``types`` of it (``--types``)."""
    from secops.dlp import Classifier, Policy

    policy = Policy.default().restricted(types) if types else None
    classifier = Classifier(policy, use_prefilter=use_prefilter)
    classifier.scan_text("warm-up 4111 1111 1111 1111")  # compile outside the timing
    _settle()
    cpu, start = time.process_time(), time.perf_counter()
    count = sum(1 for _ in classifier.iter_text(text))
    CPU["ours"] = time.process_time() - cpu
    return time.perf_counter() - start, count


def _offline_tldextract() -> None:
    """Presidio's e-mail recognizer calls tldextract, which downloads the public suffix
    list; use the bundled snapshot so the benchmark never touches the network."""
    import tldextract
    import tldextract.tldextract as module

    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    tldextract.extract = module.TLD_EXTRACTOR  # type: ignore[assignment]


EQUAL_WORK_TYPES = ("email", "credit_card", "iban", "ip_address", "us_ssn")
"""Our types that Presidio's recognizers other than PhoneRecognizer find."""

PRESIDIO_RECOGNIZERS = ("CreditCardRecognizer", "EmailRecognizer", "IbanRecognizer",
                        "IpRecognizer", "PhoneRecognizer", "UsSsnRecognizer")


def bench_presidio(text: str, skip: tuple[str, ...] = ()) -> tuple[float, int]:
    """Presidio's pattern recognizers for the types both engines find, minus ``skip``."""
    _offline_tldextract()
    from presidio_analyzer import predefined_recognizers

    recognizers = [getattr(predefined_recognizers, name)() for name in PRESIDIO_RECOGNIZERS
                   if name not in skip]
    for recognizer in recognizers:  # first calls outside the timing (lazy set-up)
        recognizer.analyze("warm-up jane@acme-corp.io 81.2.69.160", recognizer.supported_entities,
                           nlp_artifacts=None)  # type: ignore[arg-type]
    _settle()
    cpu, start = time.process_time(), time.perf_counter()
    count = 0
    for recognizer in recognizers:
        # no NLP model: the pattern recognizers take None (Presidio's type says NlpArtifacts)
        count += len(recognizer.analyze(text, recognizer.supported_entities,
                                        nlp_artifacts=None))  # type: ignore[arg-type]
    CPU["presidio"] = time.process_time() - cpu
    return time.perf_counter() - start, count


def rss_child(gigabytes: float) -> None:
    """Write a large file, stream it through the CLI path, print peak RSS (MB)."""
    from secops.dlp import Classifier

    block = mixed_text(8, seed=11)
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False, encoding="utf-8") as fh:
        written = 0
        while written < gigabytes * 1e9:
            fh.write(block)
            written += len(block)
        name = fh.name
    del block
    try:
        start = time.perf_counter()
        result = Classifier().scan_file(name)
        took = time.perf_counter() - start
    finally:
        os.unlink(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{written / 1e6:.0f} MB file: {len(result.findings)} findings in {took:.1f} s "
          f"({written / 1e6 / took:.1f} MB/s), peak RSS {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the mixed text")
    parser.add_argument("--presidio-mb", type=float, default=4.0, help="slice given to Presidio")
    parser.add_argument("--dense-mb", type=float, default=5.0,
                        help="size of the dense (database export) text")
    parser.add_argument("--presidio-dense-mb", type=float, default=0.25,
                        help="slice of the dense text given to Presidio")
    parser.add_argument("--rss-gb", type=float, default=0.0, help="also stream a file this big")
    parser.add_argument("--rss-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    try:
        import presidio_analyzer  # noqa: F401
        import tldextract  # noqa: F401
    except ImportError as exc:
        parser.error(f"the comparison peer is missing ({exc.name}): "
                     ".venv/bin/pip install -e '.[bench]' installs Presidio")
    from secops.dlp import prefilter

    for case, text, presidio_mb in (
            ("sparse", mixed_text(args.mb), args.presidio_mb),
            ("dense", dense_text(args.dense_mb), args.presidio_dense_mb)):
        mb = len(text.encode()) / 1e6
        print(f"[{case}]")
        took, found = bench_ours(text, use_prefilter=False)
        print(f"secops.dlp : {mb:7.1f} MB in {took:6.2f} s = {mb / took:7.1f} MB/s "
              f"({found} findings, {found / mb:.0f}/MB) [re only]")
        if prefilter.AVAILABLE:
            took, found = bench_ours(text)
            print(f"secops.dlp : {mb:7.1f} MB in {took:6.2f} s = {mb / took:7.1f} MB/s "
                  f"({found} findings, {found / mb:.0f}/MB) [hyperscan prefilter]")
        ours, ours_cpu = mb / took, mb / CPU["ours"]
        print(f"secops.dlp : {ours_cpu:7.1f} MB per CPU-second (fastest path)")
        piece = text[: int(presidio_mb * 1_000_000)]
        pmb = len(piece.encode()) / 1e6
        _, ours_piece = bench_ours(piece, use_prefilter=prefilter.AVAILABLE)
        ptook, pfound = bench_presidio(piece)
        theirs = pmb / ptook
        theirs_cpu = pmb / CPU["presidio"]
        print(f"presidio   : {pmb:7.2f} MB in {ptook:6.2f} s = {theirs:7.2f} MB/s "
              f"({pfound} results, secops.dlp {ours_piece} findings on this slice; "
              f"{theirs_cpu:.2f} MB per CPU-second)")
        print(f"ratio      : {ours / theirs:.1f}x (fastest secops.dlp path / presidio) [{case}]")
        print(f"ratio      : {ours_cpu / theirs_cpu:.1f}x per CPU-second [{case}]")
        if case == "dense":
            # Presidio's phone recognizer (phonenumbers' matcher over the whole text) is
            # most of its time on digit-dense rows. The equal-work comparison: Presidio
            # without it, and our engine restricted to the same types (no phone numbers).
            ptook, pfound = bench_presidio(piece, skip=("PhoneRecognizer",))
            lean, lean_cpu = pmb / ptook, pmb / CPU["presidio"]
            print(f"presidio   : {pmb:7.2f} MB in {ptook:6.2f} s = {lean:7.2f} MB/s "
                  f"({pfound} results; {lean_cpu:.2f} MB per CPU-second) "
                  "[without PhoneRecognizer]")
            print(f"ratio      : {ours / lean:.1f}x (fastest secops.dlp path / presidio "
                  f"without PhoneRecognizer) [dense]; {ours_cpu / lean_cpu:.1f}x per CPU-second")
            use = prefilter.AVAILABLE
            took, found = bench_ours(text, use_prefilter=use, types=EQUAL_WORK_TYPES)
            same, same_cpu = mb / took, mb / CPU["ours"]
            _, found_piece = bench_ours(piece, use_prefilter=use, types=EQUAL_WORK_TYPES)
            print(f"secops.dlp : {mb:7.1f} MB in {took:6.2f} s = {same:7.1f} MB/s "
                  f"({found} findings, {found / mb:.0f}/MB, {found_piece} on Presidio's "
                  f"slice; {same_cpu:.1f} MB per CPU-second) [--types "
                  f"{','.join(EQUAL_WORK_TYPES)}]")
            print(f"ratio      : {same / lean:.1f}x (secops.dlp --types / presidio without "
                  f"PhoneRecognizer, equal work) [dense]; {same_cpu / lean_cpu:.1f}x per "
                  "CPU-second")
    if args.rss_gb:
        # a fresh process, so the 50 MB text above does not count towards peak RSS
        subprocess.run([sys.executable, __file__, "--rss-child", str(args.rss_gb)], check=True)


if __name__ == "__main__":
    main()
