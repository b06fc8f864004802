"""/v1/schedules: recurring jobs, picked up by beat without a restart."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from secops.api.deps import Principal, db_read_session, db_session, require
from secops.api.schemas import ScheduleCreate, ScheduleRead, ScheduleUpdate
from secops.api.security import audit_context
from secops.db.models import Schedule
from secops.services import audit
from secops.services import schedules as schedule_service

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])


def _read(schedule: Schedule) -> ScheduleRead:
    out = ScheduleRead.model_validate(schedule)
    out.next_run_at = schedule_service.next_run(schedule) if schedule.enabled else None
    return out


@router.post("", status_code=201, response_model=ScheduleRead, summary="Create a schedule")
def create(
    body: ScheduleCreate,
    request: Request,
    principal: Principal = Depends(require("schedules:write")),
    session: Session = Depends(db_session),
) -> ScheduleRead:
    schedule = schedule_service.create_schedule(
        session=session, name=body.name, kind=body.kind, params=body.params,
        created_by=principal.actor, cron=body.cron, interval_seconds=body.interval_seconds,
        enabled=body.enabled,
    )
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="schedules.create", target=f"schedule:{schedule.id}",
                 details={"name": schedule.name, "kind": schedule.kind, "cron": schedule.cron,
                          "interval_seconds": schedule.interval_seconds})
    session.commit()
    return _read(schedule)


@router.get("", response_model=list[ScheduleRead], summary="List schedules")
def list_all(
    principal: Principal = Depends(require("schedules:read")),
    session: Session = Depends(db_read_session),
) -> list[ScheduleRead]:
    return [_read(s) for s in schedule_service.list_schedules(session=session)]


@router.get("/{schedule_id}", response_model=ScheduleRead, summary="Get a schedule")
def get(
    schedule_id: str,
    principal: Principal = Depends(require("schedules:read")),
    session: Session = Depends(db_read_session),
) -> ScheduleRead:
    return _read(schedule_service.get_schedule(session=session, schedule_id=schedule_id))


@router.patch("/{schedule_id}", response_model=ScheduleRead, summary="Change a schedule")
def update(
    schedule_id: str,
    body: ScheduleUpdate,
    request: Request,
    principal: Principal = Depends(require("schedules:write")),
    session: Session = Depends(db_session),
) -> ScheduleRead:
    changes = body.model_dump(exclude_unset=True)
    schedule = schedule_service.update_schedule(
        session=session, schedule_id=schedule_id, changes=changes
    )
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="schedules.update", target=f"schedule:{schedule.id}",
                 details={"changes": sorted(changes)})
    session.commit()
    return _read(schedule)


@router.delete("/{schedule_id}", status_code=204, response_class=Response,
               summary="Delete a schedule")
def delete(
    schedule_id: str,
    request: Request,
    principal: Principal = Depends(require("schedules:write")),
    session: Session = Depends(db_session),
) -> Response:
    schedule_service.delete_schedule(session=session, schedule_id=schedule_id)
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="schedules.delete", target=f"schedule:{schedule_id}")
    session.commit()
    return Response(status_code=204)
