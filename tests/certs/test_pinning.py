"""Pins per endpoint: verified by certs.scan, and a key change without a backup pin refused."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import select

from secops.certs import Checker
from secops.db.models import Alert, CertTarget
from secops.db.session import session_scope
from secops.errors import Conflict
from secops.services import certs
from tests.certs.pki import Pki
from tests.certs.servers import TlsServer
from tests.certs.test_inventory_service import _scan


def test_scan_verifies_pins_and_renewal_guard(sqlite_env, pki: Pki, root_file: str) -> None:
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    leaf, backup, stranger = pki.leaf(), pki.leaf(), pki.leaf()
    checker = Checker(ca_file=root_file, timeout=1, workers=2)
    with TlsServer(leaf, (pki.intermediate,)) as server:
        with session_scope() as session:
            target = certs.add_endpoint(session=session, host="127.0.0.1", port=server.port, sni=None,
                                        owner=None, tags=[], pins=[leaf.pin, backup.pin],
                                        created_by="tests")
            target_id = target.id
        _scan(checker, kv)
        with session_scope() as session:
            assert session.get(CertTarget, target_id).last_findings == []
            # renewal guard: same key or the backup key pass; a stranger's key is refused
            certs.require_pins_allow(session=session, target_id=target_id, chain_spki=[leaf.pin])
            certs.require_pins_allow(session=session, target_id=target_id,
                                     chain_spki=[backup.pin, pki.intermediate.pin])
            with pytest.raises(Conflict, match="matches none of its pins"):
                certs.require_pins_allow(session=session, target_id=target_id,
                                         chain_spki=[stranger.pin, pki.intermediate.pin])

        server.serve_certificate(stranger, (pki.intermediate,))
        _scan(checker, kv)
        with session_scope() as session:
            findings = session.get(CertTarget, target_id).last_findings
            assert [(f["id"], f["severity"]) for f in findings] == [("cert.pin_mismatch", "critical")]
            rules = session.scalars(select(Alert.rule).where(Alert.subject.contains("pin_mismatch"))).all()
            assert rules == ["certs.critical"]
            # pinning the issuing CA's key accepts any leaf it signs
            certs.update_target(session=session, target_id=target_id, kind="endpoint",
                                changes={"pins": [pki.intermediate.pin]})
        _scan(checker, kv)
        with session_scope() as session:
            assert session.get(CertTarget, target_id).last_findings == []
