"""The security console for people: server-rendered pages under ``/console/``.

:func:`install` adds its routes to the API application; see docs/console.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import Response

from secops.api.console import account, auth, pages, users_page, wellknown
from secops.api.console.web import ConsoleHalt, templates


async def _halt(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleHalt)
    return exc.response


def _ts(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def install(app: FastAPI) -> None:
    auth.register_console_rules()
    templates().filters["ts"] = _ts
    app.add_exception_handler(ConsoleHalt, _halt)
    for router in (auth.router, account.router, pages.router, users_page.router,
                   wellknown.router):
        app.include_router(router)
