"""Checkpointed reading of log files across appends, rotation, compression and truncation."""

from __future__ import annotations

import gzip
import os

from secops.anomaly.tailing import Cursor, DictCheckpoints, new_lines


def lines_of(n, start=0, tag="a"):
    return "".join(f"{tag} line {i}\n" for i in range(start, start + n))


def read(paths, checkpoints):
    cursor = Cursor(checkpoints)
    got = []
    for line in new_lines(paths, checkpoints):
        got.append(line.text)
        cursor.advance(line)
    cursor.commit()
    return got


def test_appends_and_partial_lines_are_read_once(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(lines_of(3))
    cps = DictCheckpoints()
    assert read([log], cps) == ["a line 0", "a line 1", "a line 2"]
    assert read([log], cps) == []
    with log.open("a") as fh:
        fh.write(lines_of(2, 3) + "a line 5 (half")
    assert read([log], cps) == ["a line 3", "a line 4"]
    with log.open("a") as fh:
        fh.write(" written)\n")
    assert read([log], cps) == ["a line 5 (half written)"]


def test_a_run_that_stops_early_loses_nothing(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(lines_of(5))
    cps = DictCheckpoints()
    cursor = Cursor(cps)
    for line in new_lines([log], cps):
        cursor.advance(line)
        if line.text == "a line 1":
            break
    cursor.commit()
    assert read([log], cps) == ["a line 2", "a line 3", "a line 4"]


def test_rename_rotation_then_compression(tmp_path):
    log, rotated, old = tmp_path / "auth.log", tmp_path / "auth.log.1", tmp_path / "auth.log.2.gz"
    log.write_text(lines_of(3))
    cps = DictCheckpoints()
    assert len(read([log], cps)) == 3
    with log.open("a") as fh:
        fh.write(lines_of(1, 3))
    log.rename(rotated)                       # logrotate: rename, then a new file
    log.write_text(lines_of(2, tag="b"))
    os.utime(rotated, (1000, 1000))
    assert read([log, rotated], cps) == ["a line 3", "b line 0", "b line 1"]
    with rotated.open("a") as fh:             # a late write to the renamed file
        fh.write(lines_of(1, 4))
    with rotated.open("rb") as src, gzip.open(old, "wb") as dst:   # then compressed
        dst.write(src.read())
    rotated.unlink()
    os.utime(old, (1000, 1000))
    assert read([log, old], cps) == ["a line 4"]
    assert read([log, old], cps) == []


def test_copytruncate(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(lines_of(4))
    cps = DictCheckpoints()
    assert len(read([log], cps)) == 4
    with log.open("r+") as fh:                # copytruncate: the copy is elsewhere, cut to 0
        fh.truncate(0)
    assert read([log], cps) == []
    with log.open("a") as fh:
        fh.write(lines_of(2, tag="c"))
    assert read([log], cps) == ["c line 0", "c line 1"]
    # cut again and rewritten with the very same first line: the size shows the cut
    with log.open("r+") as fh:
        fh.truncate(0)
    log.write_text("c line 0\n")
    assert read([log], cps) == ["c line 0"]


def test_a_file_without_a_complete_first_line_waits(tmp_path):
    log = tmp_path / "new.log"
    log.write_text("starting")
    cps = DictCheckpoints()
    assert read([log], cps) == []
    log.write_text("starting up\nsecond\n")
    assert read([log], cps) == ["starting up", "second"]
