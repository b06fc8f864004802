"""Console accounts: enrolment links, the password policy, admin actions, all audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from argon2 import extract_parameters
from click.testing import CliRunner
from sqlalchemy import select

from secops.cli import cli
from secops.db.base import utcnow
from secops.db.console_models import User, UserBackupCode
from secops.db.models import AuditEntry, SecurityEvent
from secops.db.session import session_scope
from secops.errors import Conflict, InvalidInput, NotFound
from secops.services import mfa, passwords
from secops.services import users as user_service

GOOD = "violet tractor humming 42"


def _create(name: str = "alice", role: str = "analyst") -> dict:
    result = CliRunner().invoke(cli, ["users", "create", "--name", name, "--role", role, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _token(out: dict) -> str:
    return out["link"].rsplit("/", 1)[1]


def test_create_prints_a_one_time_link_that_enrols_once(sqlite_env):
    out = _create()
    assert out["link"].startswith("http://localhost:8000/console/enrol/")
    token = _token(out)
    assert len(token) == 43
    with session_scope() as session:
        user = session.get(User, out["id"])
        assert user.password_hash is None and user.enrol_digest != token  # digest only
        assert user.enrol_expires_at - utcnow() > timedelta(hours=71)
    with session_scope() as session:
        user = user_service.complete_enrolment(session=session, token=token, password=GOOD)
        assert user.password_hash.startswith("$argon2id$")
    with session_scope() as session, pytest.raises(InvalidInput) as err:
        user_service.complete_enrolment(session=session, token=token, password=GOOD + "x")
    assert err.value.message == user_service.BAD_LINK
    with session_scope() as session:
        assert user_service.authenticate(session=session, name="ALICE", password=GOOD).id == out["id"]
        assert user_service.authenticate(session=session, name="alice", password=GOOD + "x") is None
        assert user_service.authenticate(session=session, name="nobody", password=GOOD) is None
    with session_scope() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry)).all()]
    assert actions.count("users.create") == 1


def test_expired_and_unknown_links_are_refused_alike(sqlite_env):
    token = _token(_create())
    with session_scope() as session:
        user = session.scalar(select(User))
        user.enrol_expires_at = utcnow() - timedelta(seconds=1)
    for candidate in (token, "x" * 43, "", "y" * 500):
        with session_scope() as session, pytest.raises(InvalidInput) as err:
            user_service.complete_enrolment(session=session, token=candidate, password=GOOD)
        assert err.value.message == user_service.BAD_LINK
    with session_scope() as session:
        assert session.scalar(select(User)).password_hash is None


@pytest.mark.parametrize("password, reason", [
    ("short pass", "12 to 1024"),
    ("x" * 1025, "12 to 1024"),
    ("qwertyqwerty", "commonly used"),
    ("1Q2W3E4R5T6Y", "commonly used"),
    ("alice the analyst", "account name"),
])
def test_password_policy(password, reason):
    with pytest.raises(InvalidInput) as err:
        passwords.check_policy(password, "Alice the Analyst")
    assert reason in err.value.message


def test_policy_has_no_composition_rules_and_argon2_meets_owasp():
    passwords.check_policy("all lowercase words here", "bob")
    passwords.check_policy("é" * 12, "bob")
    assert "1qaz2wsx3edc" in passwords.common_passwords()
    assert len(passwords.common_passwords()) > 19000
    params = extract_parameters(passwords.hash_password("all lowercase words here"))
    assert params.type.name == "ID"
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2


def test_names_are_unique_and_roles_are_human(sqlite_env):
    _create("carol", "admin")
    result = CliRunner().invoke(cli, ["users", "create", "--name", "Carol", "--role", "auditor"])
    assert result.exit_code != 0
    with session_scope() as session, pytest.raises(Conflict):
        user_service.create_user(session=session, name="CAROL", role="auditor", created_by="t")
    result = CliRunner().invoke(cli, ["users", "create", "--name", "svc", "--role", "service"])
    assert result.exit_code == 2 and "service" in result.output


def test_disable_enable_and_reset_factors_are_audited_events(sqlite_env):
    out = _create("dave", "admin")
    with session_scope() as session:
        user = user_service.complete_enrolment(session=session, token=_token(out), password=GOOD)
        mfa.begin_totp(session=session, user=user)
        user.totp_confirmed = True
        mfa.new_backup_codes(session=session, user=user)
    runner = CliRunner()
    for args in (["disable", "dave"], ["enable", "dave"], ["reset-factors", "dave", "--password"]):
        result = runner.invoke(cli, ["users", *args])
        assert result.exit_code == 0, result.output
    assert "/console/enrol/" in result.output
    with session_scope() as session:
        user = session.scalar(select(User))
        assert user.disabled_at is None and user.totp_secret is None and user.password_hash is None
        assert session.scalars(select(UserBackupCode)).all() == []
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        events = [e.kind for e in session.scalars(select(SecurityEvent).order_by(SecurityEvent.id))]
    assert actions == ["users.create", "users.disable", "users.enable", "users.reset_factors"]
    assert events == ["users.disable", "users.enable", "users.reset_factors"]
    result = runner.invoke(cli, ["users", "disable", "nobody"])
    assert isinstance(result.exception, NotFound)


def test_disabled_user_cannot_sign_in(sqlite_env):
    out = _create("erin")
    with session_scope() as session:
        user_service.complete_enrolment(session=session, token=_token(out), password=GOOD)
    assert CliRunner().invoke(cli, ["users", "disable", "erin"]).exit_code == 0
    with session_scope() as session:
        assert user_service.authenticate(session=session, name="erin", password=GOOD) is None
