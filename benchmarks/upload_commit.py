"""The upload's commit path alone: files placed in the store, rows written, committed.

What ``POST /v1/scans`` does after the body is received (``services.scans.submit_uploads``
and the commit), in this process, without HTTP, Celery or the scanner: per upload,
``--files`` small files (half new content, half content already stored) are staged,
placed (``BlobStore.commit_all``), their rows (stored files, scans, jobs, audit) written
and committed. Prints uploads/s over ``--uploads`` uploads after a warm-up.

    .venv/bin/python benchmarks/upload_commit.py [--database-url postgresql://...]

With ``--database-url`` the database is emptied of these tables first (use a scratch
database); the default is a new SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upload-commit-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'secops.db'}"
        os.environ.update({
            "SECOPS_DATA_DIR": str(Path(tmp) / "data"), "SECOPS_DATABASE_URL": url,
            "SECOPS_API_KEY_HMAC": secrets.token_hex(16), "SECOPS_AUDIT_HMAC": secrets.token_hex(16),
            "SECOPS_STORAGE_KEY": secrets.token_hex(16), "SECOPS_LOG_LEVEL": "WARNING"})
        from secops.config import get_settings
        from secops.db.base import Base
        from secops.db.migrate import upgrade
        from secops.db.session import get_engine, get_sessionmaker
        from secops.services import scans
        from secops.services.audit import AuditContext
        from secops.services.storage import get_store

        upgrade(url)
        if args.database_url:
            with get_engine(url).begin() as conn:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())
        settings = get_settings()
        store = get_store(settings)
        factory = get_sessionmaker(url)
        ctx = AuditContext(actor="key:bench")
        stored = [secrets.token_bytes(2000) for _ in range(max(1, args.files // 2))]

        def upload(i: int) -> None:
            contents = [*stored, *(secrets.token_bytes(2000)
                                   for _ in range(args.files - len(stored)))]
            staged = [store.stage_bytes(data, f"f{i}-{n}.bin") for n, data in enumerate(contents)]
            with factory() as session:
                scans.submit_uploads(session=session, store=store, staged=staged,
                                     submitted_by="key:bench", rescan=True,
                                     ruleset_version="bench", audit_ctx=ctx, job_max_files=50,
                                     job_max_bytes=1 << 24)
                session.commit()

        for i in range(20):  # warm-up: the shared contents are stored from here on
            upload(i)
        start = time.perf_counter()
        for i in range(args.uploads):
            upload(i)
        elapsed = time.perf_counter() - start
    print(json.dumps({"database": url.split(":")[0], "uploads": args.uploads,
                      "files_per_upload": args.files,
                      "uploads_per_s": round(args.uploads / elapsed, 1)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
