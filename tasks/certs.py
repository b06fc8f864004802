"""Certificate kinds: ``certs.scan`` over the inventory.

Plan (read the targets), end the read transaction, handshake and read files without the
database, record certificates, changes and findings, commit, publish alert deliveries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.models import Job
from secops.services import cert_deploy, cert_scans
from secops.services.redisconn import get_redis
from tasks.base import job_task
from tasks.dispatch import publish_after_commit


@job_task("certs.scan")
def scan(session: Session, job: Job) -> dict[str, Any]:
    """Check the inventoried targets and record what they served."""
    plan = cert_scans.plan_scan(session=session, job=job)
    session.commit()
    results = cert_scans.execute_scan(plan, checker=cert_scans.get_checker(get_settings()))
    outcome = cert_scans.record_scan(session=session, results=results, kv=get_redis())
    publish_after_commit(session, outcome.deliveries)
    return outcome.summary


@job_task("certs.renew")
def renew(session: Session, job: Job) -> dict[str, Any]:
    """Renew and deploy the managed certificates that are due."""
    settings = get_settings()
    ids = cert_deploy.due_deployments(session=session, settings=settings,
                                      ids=job.params.get("deployment_ids"))
    outcomes = [cert_deploy.renew(session=session, settings=settings, deployment_id=i,
                                  force=bool(job.params.get("force")), actor=f"job:{job.id}",
                                  checkpoint=session.commit)
                for i in ids]
    return {"deployments": len(outcomes),
            "outcomes": {o.deployment_id: o.status for o in outcomes},
            "errors": {o.deployment_id: o.detail for o in outcomes if o.detail}}
