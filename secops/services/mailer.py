"""One-time codes to data subjects: e-mail through the configured SMTP server
(``SECOPS_SMTP_*``), or the signed webhook sink of alerts (``SECOPS_PRIVACY_CODE_SINK=webhook``).

STARTTLS is used when ``SECOPS_SMTP_STARTTLS`` is true (the default) with the system's
trust store; ``SECOPS_SMTP_USER`` and the ``smtp_password`` secret log in when set.
The webhook gets a JSON body signed like an alert (``X-SecOps-Signature``, HMAC-SHA256
with ``alert_webhook_secret``); the receiver (an SMS gateway, the application's own
mailer) delivers the code. A server that cannot be reached or refuses the message is
:class:`Unavailable`: the caller keeps nothing that says the message went out.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any

import httpx

from secops.config import Settings
from secops.errors import ConfigurationError, Unavailable


def send_mail(settings: Settings, *, to: str, subject: str, body: str) -> None:
    if not settings.smtp_host:
        raise ConfigurationError("no SMTP server: set SECOPS_SMTP_HOST to deliver one-time codes")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.secret("smtp_password").get_secret_value())
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise Unavailable(f"the SMTP server did not take the message ({type(exc).__name__})") from None


def post_webhook(settings: Settings, payload: dict[str, Any]) -> None:
    """POST ``payload`` signed to the alert webhook (``SECOPS_ALERT_WEBHOOK_URL``)."""
    from secops.services.alerts import SIGNATURE_HEADER, sign

    if not settings.alert_webhook_url:
        raise ConfigurationError("no webhook: set SECOPS_ALERT_WEBHOOK_URL to deliver one-time codes")
    secret = settings.secret("alert_webhook_secret").get_secret_value().encode()
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
    try:
        with httpx.Client(timeout=settings.alert_webhook_timeout, follow_redirects=False) as client:
            response = client.post(settings.alert_webhook_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise Unavailable(f"the webhook did not take the message ({type(exc).__name__})") from None
    if response.status_code >= 300:
        raise Unavailable(f"the webhook did not take the message (HTTP {response.status_code})")
