"""DLP kind: ``dlp.classify`` on submitted text or a stored file.

Like the scanning handlers: plan, end the read transaction, classify without the
database, record, commit, publish alert deliveries; submitted text is then dropped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.models import Job
from secops.services import dlp, dlp_checks
from secops.services.redisconn import get_redis
from secops.services.storage import get_store
from tasks.base import job_task
from tasks.dispatch import after_commit, publish_after_commit


@job_task("dlp.classify")
def classify(session: Session, job: Job) -> dict[str, Any]:
    """Classify one document and store its findings (never the values); an uploaded
    file is scanned for malware first, like a ``scan.file`` upload."""
    settings = get_settings()
    store = get_store(settings)
    plan = dlp.plan_classify(session=session, job=job)
    check = dlp_checks.plan_check(session=session, plan=plan)  # an upload: scanned first
    session.commit()
    if check is not None:
        executed = dlp_checks.execute_check(check, store=store, settings=settings)
        summary, deliveries = dlp_checks.record_check(session=session, plan=plan, check=check,
                                                      executed=executed, store=store,
                                                      kv=get_redis())
        publish_after_commit(session, deliveries)
    elif plan.done is None:
        document, error = dlp.execute_classify(plan, store=store, settings=settings)
        summary, deliveries = dlp.record_classification(session=session, plan=plan,
                                                        document=document, error=error,
                                                        kv=get_redis(), store=store)
        publish_after_commit(session, deliveries)
    else:
        summary = plan.done
    if plan.source == "text":  # the text is kept until its outcome is committed
        scan_id = plan.dlp_scan_id
        after_commit(session, lambda: store.drop_text(scan_id))
    return summary
