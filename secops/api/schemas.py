"""Request and response models (``XCreate``, ``XRead``, ``XUpdate``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

KIND_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobCreate(Strict):
    kind: str = Field(..., max_length=64, pattern=KIND_PATTERN, examples=["system.ping"])
    params: dict[str, Any] = Field(default_factory=dict)


class JobBatchCreate(Strict):
    jobs: list[JobCreate] = Field(..., min_length=1, max_length=10000)


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    submitted_by: str
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobBatchRead(BaseModel):
    jobs: list[JobRead]


class Page(BaseModel, Generic[T]):
    """One page of a listing: the items, how many match in all, and the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


class JobList(Page[JobRead]):
    """A page of jobs, newest first."""


class ScheduleCreate(Strict):
    name: str = Field(..., min_length=1, max_length=100)
    kind: str = Field(..., max_length=64, pattern=KIND_PATTERN)
    params: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = Field(None, max_length=100, examples=["*/15 * * * *"])
    interval_seconds: int | None = Field(None, ge=1, le=366 * 86400)
    enabled: bool = True


class ScheduleUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    kind: str | None = Field(None, max_length=64, pattern=KIND_PATTERN)
    params: dict[str, Any] | None = None
    cron: str | None = Field(None, max_length=100)
    interval_seconds: int | None = Field(None, ge=1, le=366 * 86400)
    enabled: bool | None = None


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    params: dict[str, Any]
    cron: str | None
    interval_seconds: int | None
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_run_at: datetime | None
    total_run_count: int
    next_run_at: datetime | None = None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    request_id: str
