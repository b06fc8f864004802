"""E-mail through the configured SMTP server (``SECOPS_SMTP_*``): one-time codes to data subjects.

STARTTLS is used when ``SECOPS_SMTP_STARTTLS`` is true (the default) with the system's
trust store; ``SECOPS_SMTP_USER`` and the ``smtp_password`` secret log in when set.
A server that cannot be reached or refuses the message is :class:`Unavailable`: the
caller keeps nothing that says the message went out.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

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
