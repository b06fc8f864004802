"""Every route declares a permission, and the role matrix holds on every route."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from secops.api.app import create_app
from secops.api.permissions import (
    ALL_PERMISSIONS,
    PERMISSION_CLASS,
    PUBLIC,
    PUBLIC_FRAMEWORK_PATHS,
    ROLE_PERMISSIONS,
    allowed,
)
from tests.factories import auth, make_key
from tests.security.conftest import api_routes, assert_problem, declared_permission, walk

ROLES = ("admin", "analyst", "auditor", "service")


def test_every_route_declares_a_permission(sqlite_env):
    app = create_app()
    undeclared = []
    seen = 0
    for route in walk(list(app.routes)):
        seen += 1
        if isinstance(route, APIRoute):
            permission = declared_permission(route)
            if permission is None or (permission != PUBLIC and permission not in ALL_PERMISSIONS):
                undeclared.append(route.path)
        elif getattr(route, "path", None) not in PUBLIC_FRAMEWORK_PATHS:
            undeclared.append(getattr(route, "path", repr(route)))
    assert seen > 15
    assert undeclared == [], f"routes without a declared permission: {undeclared}"
    # and the OpenAPI document lists exactly the routes we walked (nothing hidden)
    documented = {(p, m.upper()) for p, ops in app.openapi()["paths"].items() for m in ops}
    walked = {(r.path, r.method) for r in api_routes(app)}
    assert documented == walked


def test_only_health_and_openapi_are_public(sqlite_env):
    public = {r.path for r in api_routes(create_app())
              if declared_permission(r.route) == PUBLIC}
    # the internal CA's revocation list and chain are read by relying parties without keys
    assert public == {"/healthz", "/readyz", "/v1/certs/ca/crl", "/v1/certs/ca/chain"}


def _documented_table() -> dict[str, dict[str, str]]:
    """The role table of docs/security.md: permission -> column -> cell text."""
    lines = open("docs/security.md", encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| permission"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        table[cells[0].strip("`")] = dict(zip(header[1:], cells[1:], strict=True))
    return table


def test_roles_match_the_documented_table():
    """Every cell of the documented role table agrees with the code: the same permissions,
    each one's rate class, and for every role whether it holds the permission (the
    service column's qualifiers, such as "only its own jobs", mean it does)."""
    table = _documented_table()
    assert set(table) == set(ALL_PERMISSIONS)
    for permission, row in table.items():
        assert row["rate class"] == PERMISSION_CLASS[permission], permission
        for role in ROLES:
            cell = row[role]
            documented = cell == "x" if role != "service" else cell != ""
            assert role == "service" or cell in ("x", ""), (permission, role, cell)
            assert documented == allowed(role, permission), (permission, role, cell)
    assert set(ROLE_PERMISSIONS) == set(ROLES)


def test_authorisation_matrix_over_every_route_and_role(client, limits):
    keys = {role: make_key(role=role, kinds=["system.ping"] if role == "service" else None,
                           name=role) for role in ROLES}
    checked = 0
    for info in api_routes(client.app):
        permission = declared_permission(info.route)
        if permission == PUBLIC:
            continue
        # no credentials and a bad key: the same 401 everywhere
        for headers in ({}, auth("secops_zzzzzzzz_" + "A" * 43), {"Authorization": "Basic eDp5"}):
            assert_problem(client.request(info.method, info.url(), headers=headers), 401)
        for role, key in keys.items():
            resp = client.request(info.method, info.url(), headers=auth(key),
                                  json={} if info.method in ("POST", "PATCH") else None)
            if allowed(role, permission):
                assert resp.status_code not in (401, 403), (role, info, resp.text)
                assert resp.status_code < 500, (role, info, resp.text)
            else:
                assert_problem(resp, 403)
            checked += 1
    assert checked >= 4 * 17


def test_service_key_submits_only_listed_kinds(client):
    service = make_key(role="service", kinds=["system.ping"], name="svc")
    assert client.post("/v1/jobs", json={"kind": "system.ping"},
                       headers=auth(service)).status_code == 202
    assert_problem(client.post("/v1/jobs", json={"kind": "audit.verify"},
                               headers=auth(service)), 403)
    # an internal kind cannot be submitted by anyone
    admin = make_key()
    assert_problem(client.post("/v1/jobs", json={"kind": "alerts.deliver",
                                                 "params": {"alert_id": "x"}},
                               headers=auth(admin)), 422)


@pytest.mark.parametrize("role", ["analyst", "auditor", "service"])
def test_non_admins_cannot_manage_keys_or_escalate(client, role):
    key = make_key(role=role, kinds=["system.ping"] if role == "service" else None)
    assert_problem(client.post("/v1/keys", json={"name": "x", "role": "admin"},
                               headers=auth(key)), 403)
    assert_problem(client.get("/v1/keys", headers=auth(key)), 403)
