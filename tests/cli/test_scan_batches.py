"""How ``secops scan`` splits files into upload batches (one request each)."""

from __future__ import annotations

from secops.cli import scan_remote
from secops.config import Settings


def _sizes(batches: list[list[str]]) -> list[int]:
    return [len(b) for b in batches]


def test_batches_ramp_up_and_down_and_keep_every_file_in_order(tmp_path):
    files = []
    for i in range(458):
        path = tmp_path / f"{i:04d}.txt"
        path.write_bytes(b"x" * (i % 7))
        files.append(str(path))
    batches = scan_remote._batches(files)
    assert [f for b in batches for f in b] == files
    sizes = _sizes(batches)
    assert sizes[:2] == list(scan_remote.FIRST_BATCHES)
    assert sizes[-2:] == list(scan_remote.LAST_BATCHES)
    assert max(sizes) == scan_remote.BATCH_FILES
    # fewer requests than files / 20, the size before the ramp-down existed
    assert len(batches) < len(files) / 20


def test_a_full_batch_is_within_what_a_default_api_accepts():
    settings = Settings()
    assert scan_remote.BATCH_FILES <= settings.scan_max_files_per_upload
    assert scan_remote.BATCH_BYTES <= settings.scan_max_upload_bytes * settings.scan_max_files_per_upload


def test_few_files_skip_the_ramp_down(tmp_path):
    for count, expected in ((1, [1]), (12, [4, 8]), (13, [4, 8, 1]), (24, [4, 8, 8, 4])):
        files = [str(tmp_path / f"f{i}") for i in range(count)]  # missing files count as 0 bytes
        assert _sizes(scan_remote._batches(files)) == expected, count


def test_batches_respect_the_byte_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_remote, "BATCH_BYTES", 250)
    files = []
    for i in range(40):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(b"\0" * 100)
        files.append(str(path))
    batches = scan_remote._batches(files)
    assert all(len(b) <= 2 for b in batches)  # 100 + 100 fits, a third would not
    assert [f for b in batches for f in b] == files
