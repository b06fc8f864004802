"""The one place settings and secrets are read.

Settings come from ``SECOPS_*`` environment variables into a typed, cached
:class:`Settings` object (``get_settings()``); nothing reads the environment at import.

Secrets are read only through :func:`read_secret`, which looks, in order, at
``/run/secrets/<name>`` (Docker secrets), at the file named by ``SECOPS_<NAME>_FILE``,
then at ``SECOPS_<NAME>``. Values are wrapped in :class:`pydantic.SecretStr`, so they
print as ``'**********'`` in reprs, logs and errors; :meth:`Settings.censored` is the
only form of the settings that may be logged. The API and the workers call
:meth:`Settings.require_secrets` at start-up, so a missing or too short key stops them
before they serve or take a job, not at the first request that needs it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from secops.errors import ConfigurationError
from secops.logs import register_secret

DOCKER_SECRETS_DIR = Path("/run/secrets")
SECRET_FIELDS = ("database_url", "redis_url", "api_key_hmac", "flower_password", "audit_hmac",
                 "alert_webhook_secret", "storage_key", "dlp_hmac",
                 "certs_ca_key", "certs_acme_account_key",
                 "privacy_hmac", "privacy_signing_key", "smtp_password",
                 "broker_url")
# Key material SecOps derives keys from: each must be at least SECRET_MIN_LENGTH characters
# (``secops up`` generates 43, ``openssl rand -hex 32`` gives 64). alert_webhook_secret is
# agreed with the receiver, so only its presence is checked.
SECRET_MIN_LENGTH = 32
KEY_SECRETS = ("api_key_hmac", "audit_hmac", "storage_key", "dlp_hmac")
API_SECRETS = ("api_key_hmac", "audit_hmac", "storage_key")  # keys, audit log, uploads
WORKER_SECRETS = ("audit_hmac", "storage_key")  # audit jobs, scans and DLP of stored files
OPTIONAL_KEYS = ("dlp_hmac",)  # checked only when set (else derived from storage_key)
RATE_CLASSES = ("submit", "read", "auth", "keys")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def read_secret(
    name: str, *, secrets_dir: Path | None = None, embedded: bool = True
) -> SecretStr | None:
    """Return the secret ``name`` from Docker secrets, ``SECOPS_<NAME>_FILE`` or ``SECOPS_<NAME>``.

    Last, the embedded default: ``$SECOPS_DATA_DIR/secrets/<name>``, which ``secops up``
    generates (mode 0600) on a first run with no secrets configured.
    """
    value = _lookup_secret(name, secrets_dir)
    if value is None and embedded:
        generated = embedded_secrets_dir() / name.lower()
        if generated.is_file():
            value = _read_secret_file(generated, name)
    if value is not None:
        register_secret(value)
        return SecretStr(value)
    return None


def embedded_secrets_dir() -> Path:
    return Path(os.environ.get("SECOPS_DATA_DIR") or "./var") / "secrets"


def _lookup_secret(name: str, secrets_dir: Path | None) -> str | None:
    key = name.upper()
    docker_file = (secrets_dir or DOCKER_SECRETS_DIR) / name.lower()
    if docker_file.is_file():
        return _read_secret_file(docker_file, name)
    file_var = os.environ.get(f"SECOPS_{key}_FILE")
    if file_var:
        path = Path(file_var)
        if not path.is_file():
            raise ConfigurationError(f"secret {name}: SECOPS_{key}_FILE names a missing file")
        return _read_secret_file(path, name)
    return os.environ.get(f"SECOPS_{key}") or None


def _read_secret_file(path: Path, name: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"secret {name}: cannot read its file ({exc.strerror})") from None
    if not value:
        raise ConfigurationError(f"secret {name}: its file is empty")
    return value


class Settings(BaseSettings):
    """Typed settings from ``SECOPS_*`` variables. Secrets are not fields: see read_secret."""

    model_config = SettingsConfigDict(env_prefix="SECOPS_", extra="ignore")

    data_dir: Path = Path("./var")
    # Read through the secret reader (they may carry credentials): see SECRET_FIELDS.
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    # The Celery broker: unset, the Redis of SECOPS_REDIS_URL; amqp://... for RabbitMQ
    # (quorum queues, see tasks.routing). Rate limits, key use and sessions stay on Redis.
    broker_url: SecretStr | None = None
    # RabbitMQ: a message returned to its queue more than this many times (its worker
    # died each time) is dead-lettered to secops.dead instead of being delivered again.
    broker_delivery_limit: int = Field(5, ge=1, le=1000)
    api_key_hmac: SecretStr | None = None
    flower_user: str = "admin"
    flower_password: SecretStr | None = None
    audit_hmac: SecretStr | None = None
    alert_webhook_secret: SecretStr | None = None
    storage_key: SecretStr | None = None  # AES-GCM key material for stored files (HKDF)
    dlp_hmac: SecretStr | None = None  # keyed hashes of DLP findings; else derived from storage_key
    certs_ca_key: SecretStr | None = None  # the internal CA's intermediate key (PEM)
    certs_acme_account_key: SecretStr | None = None  # the ACME account key (PEM, RSA or EC P-256)
    api_url: str | None = None  # where the CLI reaches the API; default from host and port
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # API processes (uvicorn --workers): one event loop parses, hashes and encrypts
    # uploads, so one process uses at most one core for them.
    api_processes: int = Field(2, ge=1, le=64)
    flower_port: int = Field(5555, ge=1, le=65535)
    log_level: str = "INFO"

    # Jobs
    job_max_attempts: int = Field(3, ge=1, le=20)
    job_time_limit_default: int = Field(300, ge=1)
    job_time_limits: dict[str, int] = Field(default_factory=dict)
    reaper_interval: float = Field(60.0, gt=0)
    sqlite_busy_timeout: float = Field(30.0, gt=0, le=600)  # wait for SQLite's write lock
    shutdown_grace: float = Field(20.0, ge=1, le=600)  # secops up: SIGTERM, then SIGKILL after
    # The reaper publishes again a job queued this long (seconds): its message may have
    # been lost with the broker. Above the longest retry backoff (300 s).
    queued_republish_after: int = Field(600, ge=301)
    job_lease_grace: int = Field(30, ge=0)
    visibility_margin: int = Field(60, ge=1)
    worker_prefetch: int = Field(1, ge=1, le=64)
    beat_reload_interval: float = Field(5.0, gt=0)
    batch_max_jobs: int = Field(1000, ge=1, le=10000)
    ping_max_sleep: float = Field(5.0, ge=0, le=600)  # system.ping's sleep, for non-admins
    max_body_bytes: int = Field(1_048_576, ge=1024)
    idempotency_ttl_hours: int = Field(24, ge=1)

    # API keys
    api_key_default_days: int = Field(90, ge=1)
    api_key_rotation_grace_hours: int = Field(default=24, ge=0, le=24 * 30)
    key_use_flush_interval: float = Field(60.0, gt=0)  # Redis use counts -> api_keys
    # An API process remembers a key it authenticated this long (0: never); a revocation
    # or change reaches every process at once through Redis (see services.keys).
    api_key_cache_seconds: float = Field(5.0, ge=0, le=60)

    # Edge: rate limits ("<count>/<seconds|second|minute|hour|day>"), proxies, CORS, HSTS
    rate_limit_submit: str = "120/minute"
    rate_limit_read: str = "600/minute"
    rate_limit_auth: str = "30/minute"
    rate_limit_keys: str = "60/minute"  # key management: its own bucket, not failed logins
    readyz_rate: str = "60/minute"  # /readyz per client address, counted in each API process
    readyz_cache_seconds: float = Field(5.0, ge=0, le=300)
    trusted_proxies: list[str] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    hsts: bool = False

    # Audit log and security monitoring; thresholds read "<count>/<window>": an alert
    # fires when more than <count> events fall within the window.
    audit_retention_days: int = Field(default=365, ge=1)
    # Retention of everything else, in days (0 keeps forever): see services.retention
    retention_jobs_days: int = Field(default=90, ge=0)
    retention_events_days: int = Field(default=180, ge=0)
    retention_scans_days: int = Field(default=180, ge=0)
    retention_dlp_days: int = Field(default=180, ge=0)
    retention_files_days: int = Field(default=90, ge=0)
    retention_interval: float = Field(default=3600.0, gt=0)  # seconds between prunes
    audit_archive_interval: float = Field(default=86400.0, gt=0)
    # Each verification appends the head it verified (seq, hash) here, outside the
    # database: keep it off the data directory's volume (unset: not anchored).
    audit_anchor_file: Path | None = None
    alert_auth_failures: str = "5/300"
    alert_auth_burst: str = "10/60"
    alert_rate_limited: str = "100/60"
    alert_webhook_url: str | None = None
    alert_webhook_timeout: float = Field(default=5.0, gt=0, le=60)

    # File scanning: uploads, stored files, directory scans
    scan_max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1)
    scan_max_files_per_upload: int = Field(100, ge=1, le=10000)
    scan_allowed_dirs: list[Path] = Field(default_factory=list)
    scan_allowed_mime_types: list[str] | None = None
    scan_rule_dirs: list[Path] = Field(default_factory=list)
    scan_sha256_blocklists: list[Path] = Field(default_factory=list)
    scan_md5_blocklists: list[Path] = Field(default_factory=list)
    scan_match_timeout: int = Field(10, ge=1, le=600)
    # ASCII text identified with libmagic's reduced database (same answers, faster)
    scan_reduced_magic: bool = True
    scan_directory_max_files: int = Field(100_000, ge=1)
    # An upload's files are scanned by scan.file jobs of at most this many files and
    # bytes each (a larger file gets a job of its own): fewer, larger jobs cost less
    # per file; more, smaller ones spread one upload over more worker processes.
    scan_job_max_files: int = Field(32, ge=1, le=64)
    scan_job_max_bytes: int = Field(16 * 1024 * 1024, ge=1)

    # DLP
    dlp_on_scan: bool = False
    dlp_policy_files: list[Path] = Field(default_factory=list)
    dlp_max_text_chars: int = Field(1_000_000, ge=1)
    # Document extraction runs in a child process with these limits (0 CPU: not sandboxed)
    dlp_extract_cpu_seconds: int = Field(60, ge=0, le=3600)
    dlp_extract_memory_mb: int = Field(2048, ge=256)

    # Certificates
    certs_ca_file: Path | None = None
    certs_timeout: float = Field(5.0, gt=0, le=300)
    certs_concurrency: int = Field(32, ge=1, le=1024)
    certs_thresholds: str = "2,7,14,30"
    certs_renewal_fraction: float = Field(2 / 3, gt=0, lt=1)
    certs_probe_weak_protocols: bool = True
    certs_allowed_dirs: list[Path] = Field(default_factory=list)
    certs_ca_chain_file: Path | None = None  # the intermediate, then the root (PEM)
    certs_ca_crl_url: str | None = None  # written into issued certificates when set
    certs_reload_commands: list[Path] = Field(default_factory=list)  # allowed reload hooks
    certs_acme_directory_url: str | None = None
    certs_acme_ca_bundle: Path | None = None  # trust for the ACME server's TLS (default: system)
    certs_acme_email: str | None = None
    certs_acme_http_address: str = "0.0.0.0:80"  # the built-in HTTP-01 responder
    certs_acme_dns_provider: str | None = None  # default DNS-01 provider plugin (secops.dns_providers)
    certs_acme_dns_settings: dict[str, Any] = Field(default_factory=dict)  # its settings (JSON, no secrets)
    certs_renew_cron: str = "17 3 * * *"  # beat keeps a daily certs.renew schedule; "" for none

    # Privacy (GDPR): the personal-data map, data subject requests, their codes and
    # deadlines, and the SMTP server that delivers one-time codes
    privacy_map: Path | None = None
    privacy_hmac: SecretStr | None = None  # pseudonyms and subject hashes (>= 32 characters)
    privacy_signing_key: SecretStr | None = None  # Ed25519 key of erasure receipts
    privacy_code_ttl: int = Field(900, ge=30, le=86400)  # seconds a one-time code is valid
    privacy_code_max_attempts: int = Field(5, ge=1, le=20)  # wrong codes before it is void
    privacy_code_sends: str = "3/hour"  # codes sent per request
    privacy_due_warning_days: int = Field(7, ge=0, le=60)  # alert this long before a due date
    privacy_deadline_interval: float = Field(3600.0, gt=0)  # how often beat checks due dates
    privacy_download_ttl: int = Field(7 * 86400, ge=60)  # seconds a bundle's link is valid
    privacy_breach_alert_hours: list[int] = Field(default_factory=lambda: [24, 6])  # left of the 72 h
    privacy_code_sink: str = Field("smtp", pattern="^(smtp|webhook)$")  # how one-time codes go out
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "privacy@localhost"
    smtp_timeout: float = Field(10.0, gt=0, le=120)

    # Anomaly detection: log files, directories or glob patterns read by anomaly.ingest
    anomaly_sources: list[str] = Field(default_factory=list)
    anomaly_rule_dirs: list[Path] = Field(default_factory=list)
    anomaly_baseline_ips: Path | None = None  # JSON {account: [IPs seen before]}
    anomaly_own_events: bool = True  # SecOps' own security events are a source too
    anomaly_max_lines_per_run: int = Field(1_000_000, ge=1)  # beyond: lines are sampled
    anomaly_ingest_max_lines: int = Field(10_000, ge=1, le=100_000)
    anomaly_ingest_max_line_chars: int = Field(16_384, ge=256)

    # Console (people): sessions, enrolment, MFA, WebAuthn, security.txt
    console_origin: str | None = None  # e.g. https://secops.example.org; default http://localhost:<port>
    console_idle_timeout: int = Field(1800, ge=5, le=86400)  # seconds without a request
    console_absolute_timeout: int = Field(43200, ge=60, le=7 * 86400)  # seconds from sign-in
    console_enrol_hours: int = Field(72, ge=1, le=720)
    console_mfa_roles: list[str] = Field(default_factory=lambda: ["admin"])
    # Plain HTTP on loopback only (development): the session cookie drops Secure and the
    # __Host- prefix there. Never set it for a console reached over a network.
    console_insecure_loopback: bool = False
    rate_limit_login_account: str = "10/900"
    security_txt_contact: list[str] = Field(default_factory=list)
    security_txt_expires: str | None = None  # ISO 8601 date-time with zone
    security_txt_policy: str | None = None
    security_txt_languages: str = "en"
    security_txt_canonical: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        # Every secret goes through the reader, even when pydantic already found
        # SECOPS_<NAME> in the environment: the reader applies the documented order
        # (Docker secret, then *_FILE, then the variable) and registers the value with
        # the log redaction filter. A value passed in directly is kept only when the
        # reader finds none, and is registered too.
        data = dict(data or {})
        for name in SECRET_FIELDS:
            found = read_secret(name)
            if found is not None:
                data[name] = found
            elif data.get(name) is not None:
                given = data[name]
                register_secret(given.get_secret_value() if isinstance(given, SecretStr)
                                else str(given))
        return data

    def secret(self, name: str) -> SecretStr:
        """A required secret: a clear start-up error, never the value, when it is missing."""
        value = getattr(self, name, None)
        if not isinstance(value, SecretStr):
            raise ConfigurationError(f"secret {name} is not set: provide {_sources(name)}")
        return value

    def require_secrets(self, *names: str, optional: tuple[str, ...] = ()) -> None:
        """Check at start-up that the secrets ``names`` are set and, for key material
        (KEY_SECRETS), at least SECRET_MIN_LENGTH characters long; the ``optional`` ones
        only if they are set.

        Raises one ConfigurationError, a single line naming every unusable secret and
        where to provide it (never a value or its length); ``details["secrets"]`` maps
        each such name to ``"not set"`` or ``"too short"``.
        """
        problems: dict[str, str] = {}
        for name in (*names, *optional):
            if name not in SECRET_FIELDS:
                raise ValueError(f"unknown secret {name}")
            value = getattr(self, name)
            if value is None or not value.get_secret_value().strip():
                if name not in optional:
                    problems[name] = "not set"
            elif name in KEY_SECRETS and len(value.get_secret_value()) < SECRET_MIN_LENGTH:
                problems[name] = "too short"
        if problems:
            raise ConfigurationError("; ".join(
                f"secret {name} is not set: provide {_sources(name)}" if problem == "not set"
                else f"secret {name} is shorter than {SECRET_MIN_LENGTH} characters: provide "
                     f"a longer one (e.g. openssl rand -hex 32) as {_sources(name)}"
                for name, problem in problems.items()), details={"secrets": problems})

    @model_validator(mode="after")
    def _margins(self) -> Settings:
        if self.visibility_margin <= self.job_lease_grace:
            raise ValueError(
                "visibility_margin must exceed job_lease_grace, or Redis redelivers a job "
                "whose lease has not expired yet"
            )
        return self

    @field_validator("rate_limit_submit", "rate_limit_read", "rate_limit_auth", "rate_limit_keys",
                     "readyz_rate", "rate_limit_login_account",
                     "alert_auth_failures", "alert_auth_burst", "alert_rate_limited",
                     "privacy_code_sends")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError("CORS origins are '*' or http(s)://host[:port]")
        return value

    @field_validator("console_origin")
    @classmethod
    def _console_origin(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from urllib.parse import urlsplit

        parts = urlsplit(value.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            raise ValueError("the console origin is scheme://host[:port], e.g. https://secops.example.org")
        return value.rstrip("/")

    @field_validator("console_mfa_roles")
    @classmethod
    def _mfa_roles(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {"admin", "analyst", "auditor"})
        if unknown:
            raise ValueError(f"unknown roles {', '.join(unknown)}: use admin, analyst, auditor")
        return value

    @model_validator(mode="after")
    def _cors(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("cors_origins may not be '*' when cors_allow_credentials is set")
        return self

    def console_origin_value(self) -> str:
        """The console's public origin (scheme://host[:port]): WebAuthn and CSRF check it."""
        origin = self.console_origin or f"http://localhost:{self.api_port}"
        return origin.rstrip("/")

    def rate_limit(self, route_class: str) -> tuple[int, int]:
        """(requests, window seconds) for a route class: submit, read, auth or keys."""
        if route_class not in RATE_CLASSES:
            raise ValueError(f"unknown rate-limit class {route_class}")
        return parse_rate(getattr(self, f"rate_limit_{route_class}"))

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'secops.db').resolve()}"

    def redis_url_value(self) -> str:
        """The Redis URL (it may carry a password, so it is a SecretStr until here)."""
        if self.redis_url is None:
            raise ConfigurationError(
                "SECOPS_REDIS_URL is not set (secops up starts an embedded Redis and sets it)"
            )
        return self.redis_url.get_secret_value()

    def broker_url_value(self) -> str:
        """The Celery broker's URL: SECOPS_BROKER_URL, else the Redis of SECOPS_REDIS_URL."""
        if self.broker_url is not None:
            return self.broker_url.get_secret_value()
        return self.redis_url_value()

    def broker_is_amqp(self) -> bool:
        """True when the broker is RabbitMQ (an amqp:// or amqps:// URL)."""
        return self.broker_url is not None and self.broker_url.get_secret_value().startswith(
            ("amqp://", "amqps://", "pyamqp://"))

    def upload_body_limit(self) -> int:
        """The largest multipart body an upload route accepts: every file at its cap, plus framing."""
        return self.scan_max_upload_bytes * self.scan_max_files_per_upload + 1024 * 1024

    def time_limit(self, kind: str, default: int | None = None) -> int:
        return self.job_time_limits.get(kind, default or self.job_time_limit_default)

    def censored(self) -> dict[str, Any]:
        """Settings safe to log: secrets and credentials in URLs are replaced."""
        data = self.model_dump()
        for name in SECRET_FIELDS:
            data[name] = "**********" if data.get(name) else None
        data["database_url"] = _censor_url(self.resolved_database_url)
        return data


def _sources(name: str) -> str:
    return (f"Docker secret {name.lower()} (/run/secrets/{name.lower()}), "
            f"SECOPS_{name.upper()}_FILE or SECOPS_{name.upper()}")


def parse_rate(value: str) -> tuple[int, int]:
    """``"10/minute"`` or ``"10/60"`` -> (10, 60); ValueError for anything else."""
    count, _, period = value.strip().partition("/")
    try:
        number = int(count)
        seconds = _PERIODS[period] if period in _PERIODS else int(period)
    except (KeyError, ValueError):
        raise ValueError("must read <count>/<seconds|second|minute|hour|day>") from None
    if number < 1 or seconds < 1 or seconds > 86400:
        raise ValueError("count must be >= 1 and the window 1 s to 1 day")
    return number, seconds


def _censor_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is still not logged in clear
        return "**********"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Tests call ``get_settings.cache_clear()``."""
    try:
        return Settings()
    except ConfigurationError:  # a secret's file is missing, unreadable or empty: it says which
        raise
    except Exception as exc:  # pydantic ValidationError: name the variables, never the values
        raise ConfigurationError(_describe_settings_error(exc)) from None


def _describe_settings_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = [
            f"SECOPS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in errors()
        ]
        return "invalid settings: " + "; ".join(parts)
    return "invalid settings"
