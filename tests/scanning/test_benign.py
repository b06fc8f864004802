"""At least 100 benign files of many types must all come out clean (no false alarms)."""

from __future__ import annotations

from pathlib import Path

from secops.scanning import Scanner, Verdict
from tests.scanning.corpus import benign_corpus


def test_benign_corpus_is_clean(scanner: Scanner) -> None:
    corpus = benign_corpus(120)
    assert len(corpus) >= 100
    assert len({name.split(".", 1)[1] for name in corpus}) >= 20  # many types
    noisy = {name: [f.to_dict() for f in result.findings if f.severity >= 2]
             for name, data in corpus.items()
             if (result := scanner.scan_bytes(data, name)).verdict is not Verdict.CLEAN}
    assert noisy == {}


def test_benign_corpus_from_disk_in_parallel(scanner: Scanner, tmp_path: Path) -> None:
    corpus = benign_corpus(120)
    for name, data in corpus.items():
        (tmp_path / name).write_bytes(data)
    results = list(scanner.scan_paths([tmp_path], workers=3))
    assert [Path(p).name for p, _ in results] == sorted(corpus)
    assert all(not isinstance(r, Exception) and r.verdict is Verdict.CLEAN for _, r in results)
