"""Erasure requests through the platform: API, SMTP codes, a worker, a large SQLite shop.

Builds the shop of ``benchmarks/privacy.py`` (N users, 3N orders, 3N order items), starts
a private Redis, an SMTP server on loopback (aiosmtpd), the API and a 2-process worker
on the ``privacy`` queue, then submits R erasure requests (4 client threads), reads
each one-time code from the mails, verifies each request (which queues its
``privacy.erase`` job) and waits until every request is finished. It prints the time
from the first submission to the last finished request and how many completed and
verified.

    .venv/bin/python benchmarks/privacy_requests.py                      # 1,000 requests, 100k users
    .venv/bin/python benchmarks/privacy_requests.py --users 1000000
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import secrets
import socket
import sys
import tempfile
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _signals import concurrently, exit_on_termination  # noqa: E402
from jobs_pipeline import start, stop, wait_ready  # noqa: E402

from secops.embedded import EmbeddedRedis, free_port  # noqa: E402

_spec = importlib.util.spec_from_file_location("privacy_bench", ROOT / "benchmarks" / "privacy.py")
assert _spec is not None and _spec.loader is not None
shop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shop)


class Mailbox:
    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=default)
        found = re.search(r"\b(\d{6})\b", message.get_content())  # type: ignore[attr-defined]
        if found:
            self.codes[str(message["To"])] = found.group(1)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    from aiosmtpd.controller import Controller

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        shop_url = shop.build_sqlite(tmp / "shop.db", args.users)
        print(
            f"shop: {args.users:,} users, {3 * args.users:,} orders and items, built in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        (tmp / "map.yaml").write_text(shop.MAP.format(url=shop_url))
        redis_server = EmbeddedRedis(tmp, secrets.token_hex(8))
        redis_server.start()
        box = Mailbox()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            smtp_port = s.getsockname()[1]
        smtp = Controller(box, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        url = f"sqlite:///{tmp / 'secops.db'}"
        env = {
            "SECOPS_DATA_DIR": str(tmp),
            "SECOPS_DATABASE_URL": url,
            "SECOPS_REDIS_URL": redis_server.url,
            "SECOPS_API_KEY_HMAC": secrets.token_hex(16),
            "SECOPS_AUDIT_HMAC": secrets.token_hex(16),
            "SECOPS_STORAGE_KEY": secrets.token_hex(32),
            "SECOPS_PRIVACY_HMAC": secrets.token_hex(32),
            "SECOPS_PRIVACY_SIGNING_KEY": secrets.token_hex(32),
            "SECOPS_PRIVACY_MAP": str(tmp / "map.yaml"),
            "SECOPS_SMTP_HOST": "127.0.0.1",
            "SECOPS_SMTP_PORT": str(smtp_port),
            "SECOPS_SMTP_STARTTLS": "false",
            "SECOPS_LOG_LEVEL": "INFO",
            "SECOPS_RATE_LIMIT_SUBMIT": "1000000/minute",
            "SECOPS_RATE_LIMIT_READ": "1000000/minute",
        }
        os.environ.update(env)
        from secops.config import get_settings
        from secops.db.migrate import upgrade
        from secops.db.session import session_scope
        from secops.services.keys import create_key

        get_settings.cache_clear()
        upgrade(url)
        with session_scope() as s:
            key = create_key(session=s, name="bench", role="admin", created_by="bench").plaintext
        port = free_port()
        api = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "secops.api.app:create_app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
            tmp / "api.log",
        )
        worker = start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tasks",
                "worker",
                "-Q",
                "privacy,default",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            env,
            tmp / "worker.log",
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            wait_ready(tmp / "worker.log", "ready.")
            client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
            subjects = list(range(1, args.requests + 1))

            def submit(i: int) -> tuple[str, str]:
                contact = f"subject{i}@contact.example"
                r = client.post(
                    "/v1/privacy/requests",
                    json={
                        "type": "erasure",
                        "identities": {"email": shop.email(i)},
                        "contact_email": contact,
                    },
                )
                r.raise_for_status()
                return r.json()["id"], contact

            def confirm(item: tuple[str, str]) -> None:
                rid, contact = item
                client.post(
                    f"/v1/privacy/requests/{rid}/verify", json={"code": box.codes[contact]}
                ).raise_for_status()

            t0 = time.perf_counter()
            made = concurrently(4, submit, subjects)
            submitted = time.perf_counter()
            concurrently(4, confirm, made)
            verified_at = time.perf_counter()
            engine = sa.create_engine(url)
            while True:
                with engine.connect() as c:
                    left = c.execute(
                        sa.text(
                            "SELECT count(*) FROM privacy_requests WHERE status IN "
                            "('awaiting_verification', 'verified', 'in_progress')"
                        )
                    ).scalar_one()
                if left == 0:
                    break
                time.sleep(0.2)
            done = time.perf_counter()
            with engine.connect() as c:
                rows = c.execute(sa.text("SELECT status, result FROM privacy_requests")).all()
            engine.dispose()
            import json

            completed = sum(1 for r in rows if r[0] == "completed")
            verified = sum(1 for r in rows if r[1] and json.loads(r[1]).get("verified") is True)
            print(f"requests: {args.requests}  worker: 2 processes  cpus: {os.cpu_count()}")
            rate = args.requests / (submitted - t0)
            print(f"submitted (code mailed) : {submitted - t0:7.1f} s  ({rate:.0f}/s)")
            print(f"verified (job queued)   : {verified_at - submitted:7.1f} s")
            print(f"all finished            : {done - t0:7.1f} s from the first submission  (goal <= 120 s)")
            print(f"completed {completed}, verified erasures {verified}, other {len(rows) - completed}")
        finally:
            stop(api)
            stop(worker)
            smtp.stop()
            redis_server.stop()


if __name__ == "__main__":
    exit_on_termination()
    main()
