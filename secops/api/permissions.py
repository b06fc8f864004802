"""Roles and what they may do. Every route declares one permission (``require(...)``, or
``public()`` for the few open routes); the test suite walks the app's routes and fails
on any route without one. Each permission also names the rate-limit class its routes
count against (``submit``, ``read`` or ``keys``; ``auth`` is the failed-authentication
budget, shared by no route). The same table is in docs/security.md.

| permission        | class  | admin | analyst | auditor | service |
|-------------------|--------|:-----:|:-------:|:-------:|:-------:|
| jobs:submit       | submit |   x   |    x    |         | listed kinds |
| jobs:read         | read   |   x   |    x    |    x    |  own jobs |
| jobs:cancel       | submit |   x   |    x    |         |  own jobs |
| schedules:read    | read   |   x   |    x    |    x    |         |
| schedules:write   | submit |   x   |         |         |         |
| keys:manage       | keys   |   x   |         |         |         |
| audit:read        | read   |   x   |         |    x    |         |
| audit:verify      | submit |   x   |         |    x    |         |
| alerts:read       | read   |   x   |    x    |    x    |         |
| alerts:ack        | submit |   x   |    x    |         |         |
| events:read       | read   |   x   |         |    x    |         |
| metrics:read      | read   |   x   |         |    x    |    x    |
| scans:submit      | submit |   x   |    x    |         | listed kinds |
| scans:read        | read   |   x   |    x    |    x    |  own scans |
| quarantine:manage | submit |   x   |         |         |         |
| dlp:submit        | submit |   x   |    x    |         | listed kinds |
| dlp:read          | read   |   x   |    x    |    x    |  own scans |
| certs:read        | read   |   x   |    x    |    x    |    x    |
| certs:write       | submit |   x   |    x    |         |         |
| certs:issue       | submit |   x   |         |         |         |
| privacy:submit    | submit |   x   |    x    |         |    x    |
| privacy:read      | read   |   x   |    x    |    x    | own requests |
| privacy:manage    | submit |   x   |    x    |         |         |
| anomaly:ingest    | submit |   x   |    x    |         | listed kinds |
| anomaly:read      | read   |   x   |    x    |    x    |  own batches |
| account:self      | read   |   x   |    x    |    x    |         |
| users:manage      | auth   |   x   |         |         |         |
| suppressions:read | read   |   x   |    x    |    x    |         |
| suppressions:write | submit |  x   |    x    |         |         |
| suppressions:baseline | submit | x  |         |         |         |

``account:self`` is a console user's own account (factors, sessions); API keys have none.
``users:manage`` is the console's users page (invite, disable, re-enable, reset factors).
``suppressions:write`` marks findings not sensitive or false positives and revokes such
marks; ``suppressions:baseline`` exports and imports them as a baseline file.
"""

from __future__ import annotations

PERMISSION_CLASS: dict[str, str] = {
    "jobs:submit": "submit",
    "jobs:read": "read",
    "jobs:cancel": "submit",
    "schedules:read": "read",
    "schedules:write": "submit",
    "keys:manage": "keys",
    "audit:read": "read",
    "audit:verify": "submit",
    "alerts:read": "read",
    "alerts:ack": "submit",
    "events:read": "read",
    "metrics:read": "read",
    "scans:submit": "submit",
    "scans:read": "read",
    "quarantine:manage": "submit",
    "dlp:submit": "submit",
    "dlp:read": "read",
    "certs:read": "read",
    "certs:write": "submit",
    "certs:issue": "submit",
    "privacy:submit": "submit",
    "privacy:read": "read",
    "privacy:manage": "submit",
    "anomaly:ingest": "submit",
    "anomaly:read": "read",
    "account:self": "read",
    "users:manage": "auth",
    "suppressions:read": "read",
    "suppressions:write": "submit",
    "suppressions:baseline": "submit",
}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSION_CLASS),
    "analyst": frozenset({"jobs:submit", "jobs:read", "jobs:cancel", "schedules:read",
                          "alerts:read", "alerts:ack", "scans:submit", "scans:read",
                          "dlp:submit", "dlp:read", "certs:read", "certs:write",
                          "privacy:submit", "privacy:read", "privacy:manage",
                          "anomaly:ingest", "anomaly:read", "account:self"})
    | {"suppressions:read", "suppressions:write"},
    "auditor": frozenset({"jobs:read", "schedules:read", "audit:read", "alerts:read",
                          "events:read", "metrics:read", "scans:read", "dlp:read",
                          "audit:verify", "certs:read", "privacy:read", "anomaly:read",
                          "account:self"}) | {"suppressions:read"},
    "service": frozenset({"jobs:submit", "jobs:read", "jobs:cancel", "metrics:read",
                          "scans:submit", "scans:read", "dlp:submit", "dlp:read",
                          "certs:read", "privacy:submit", "privacy:read", "anomaly:ingest",
                          "anomaly:read"}),
}
PUBLIC = "public"
ALL_PERMISSIONS = frozenset(PERMISSION_CLASS)
# Routes the framework adds without dependencies; declared public here, by path.
PUBLIC_FRAMEWORK_PATHS = frozenset({"/openapi.json"})


def allowed(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def route_class(permission: str) -> str:
    return PERMISSION_CLASS[permission]
