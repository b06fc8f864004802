"""/v1/suppressions: mark DLP findings not sensitive and scan verdicts false positives;
list and revoke suppressions; export and import them as a baseline file (admin).

No route takes or returns a value digest: a DLP suppression names a stored finding and
the server copies the digest (see :mod:`secops.services.suppressions`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from secops.api.deps import Principal, db_read_session, db_session, require
from secops.api.scan_schemas import BaselineImportRead, SuppressionCreate, SuppressionRead
from secops.api.security import audit_context, optional_redis, publish
from secops.config import get_settings
from secops.db.feedback_models import Suppression
from secops.services import suppressions

router = APIRouter(prefix="/v1/suppressions", tags=["suppressions"])


def suppression_read(row: Suppression) -> SuppressionRead:
    return SuppressionRead(
        id=row.id, family=row.family, detector=row.detector, sha256=row.sha256,
        path_pattern=row.path_pattern, by_value=row.digest is not None, reason=row.reason,
        origin=row.origin, created_by=row.created_by, created_at=row.created_at,
        expires_at=row.expires_at, revoked_at=row.revoked_at, revoked_by=row.revoked_by,
        active=suppressions.in_force(row))


@router.post("", status_code=201, response_model=SuppressionRead,
             summary="Suppress a DLP finding's value, a detector on matching files, or a "
                     "scan's findings (audited)")
def create(
    body: SuppressionCreate,
    request: Request,
    principal: Principal = Depends(require("suppressions:write")),
    session: Session = Depends(db_session),
) -> SuppressionRead:
    ctx, kv = audit_context(request, principal.actor), optional_redis()
    common: dict[str, Any] = {"session": session, "reason": body.reason,
                              "expires_at": body.expires_at, "path_pattern": body.path_pattern,
                              "ctx": ctx, "kv": kv}
    if body.dlp_finding_id is not None:
        row, deliveries = suppressions.suppress_dlp_finding(finding_id=body.dlp_finding_id, **common)
    elif body.scan_id is not None:
        row, deliveries = suppressions.suppress_scan_finding(scan_id=body.scan_id,
                                                             rule_id=body.rule_id, **common)
    else:
        assert body.detector is not None
        row, deliveries = suppressions.suppress_dlp_detector(detector=body.detector, **common)
    session.commit()
    publish(deliveries)
    return suppression_read(row)


@router.get("", response_model=list[SuppressionRead],
            summary="Suppressions, newest first (those in force unless all=true)")
def list_all(
    principal: Principal = Depends(require("suppressions:read")),
    session: Session = Depends(db_read_session),
    all: Annotated[bool, Query(description="also expired and revoked ones")] = False,
    family: Annotated[Literal["dlp", "scan"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[SuppressionRead]:
    rows = suppressions.list_suppressions(session=session, active_only=not all, family=family,
                                          limit=limit)
    return [suppression_read(row) for row in rows]


@router.delete("/{suppression_id}", response_model=SuppressionRead,
               summary="Revoke a suppression (audited; the record stays)")
def revoke(
    suppression_id: Annotated[str, Path(max_length=36)],
    request: Request,
    principal: Principal = Depends(require("suppressions:write")),
    session: Session = Depends(db_session),
) -> SuppressionRead:
    row, deliveries = suppressions.revoke(session=session, suppression_id=suppression_id,
                                          ctx=audit_context(request, principal.actor),
                                          kv=optional_redis())
    session.commit()
    publish(deliveries)
    return suppression_read(row)


@router.get("/baseline", summary="Export the suppressions in force as a baseline file "
                                 "(admin; value digests sealed, audited)",
            response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
def export(
    request: Request,
    principal: Principal = Depends(require("suppressions:baseline")),
    session: Session = Depends(db_session),
) -> Response:
    baseline = suppressions.export_baseline(session=session, settings=get_settings(),
                                            ctx=audit_context(request, principal.actor))
    session.commit()
    return Response(baseline.to_json(), media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="secops-baseline.json"'})


@router.post("/baseline", response_model=BaselineImportRead,
             summary="Import a baseline file as suppressions (admin, all or nothing, audited)")
def import_(
    request: Request,
    body: Annotated[dict[str, Any], Body(description="a baseline file (docs/dlp.md)")],
    principal: Principal = Depends(require("suppressions:baseline")),
    session: Session = Depends(db_session),
) -> BaselineImportRead:
    counts, deliveries = suppressions.import_baseline(
        session=session, settings=get_settings(), data=body,
        ctx=audit_context(request, principal.actor), kv=optional_redis())
    session.commit()
    publish(deliveries)
    return BaselineImportRead(**counts)
