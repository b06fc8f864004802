"""The OpenAPI document tells the truth about errors: every operation documents its
RFC 9457 problem responses (``application/problem+json``) instead of FastAPI's default
``HTTPValidationError`` body, so clients and schema-driven tests (schemathesis) can
check error responses against the schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
PUBLIC_ERRORS = {"400": "Malformed request", "404": "No such resource",
                 "405": "Method not allowed", "413": "Body too large",
                 "422": "Invalid input", "500": "Internal error"}
PROTECTED_ERRORS = {**PUBLIC_ERRORS, "401": "Authentication failed", "403": "Forbidden",
                    "409": "Conflict", "429": "Rate limited", "503": "Unavailable"}


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer"}
        ref = {"$ref": "#/components/schemas/Problem"}
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                protected = not path.startswith(("/healthz", "/readyz"))
                errors = PROTECTED_ERRORS if protected else PUBLIC_ERRORS
                for status, description in errors.items():
                    responses[status] = {"description": description, "content": {
                        "application/problem+json": {"schema": ref}}}
                if protected:
                    operation["security"] = [{"bearer": []}]
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    return openapi
