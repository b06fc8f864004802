"""Roles and what they may do. Every route declares one permission (``require(...)``);
the test suite walks the app's routes and fails on any route without one.

| permission        | admin | analyst | auditor | service |
|-------------------|:-----:|:-------:|:-------:|:-------:|
| jobs:submit       |   x   |    x    |         | listed kinds |
| jobs:read         |   x   |    x    |    x    |  own jobs |
| jobs:cancel       |   x   |    x    |         |  own jobs |
| schedules:read    |   x   |    x    |    x    |         |
| schedules:write   |   x   |         |         |         |
| keys:manage       |   x   |         |         |         |
"""

from __future__ import annotations

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"jobs:submit", "jobs:read", "jobs:cancel", "schedules:read",
                        "schedules:write", "keys:manage"}),
    "analyst": frozenset({"jobs:submit", "jobs:read", "jobs:cancel", "schedules:read"}),
    "auditor": frozenset({"jobs:read", "schedules:read"}),
    "service": frozenset({"jobs:submit", "jobs:read", "jobs:cancel"}),
}
PUBLIC = "public"
ALL_PERMISSIONS = frozenset().union(*ROLE_PERMISSIONS.values())


def allowed(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
