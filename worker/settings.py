"""Configuration, read once from the environment into a frozen ``Settings``.

Nothing else in billing-ops reads ``os.environ``: every process calls ``load_settings()`` at
start-up and passes the result down.
"""

from __future__ import annotations

import difflib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rules import RulesConfig
from rules.findings import SEVERITIES
from worker.errors import ConfigurationError

#: Where embedded state (SQLite file, Redis socket, generated signing secret) lives.
DEFAULT_DATA_DIR = ".billing-ops"
#: Largest webhook body accepted; Stripe events are a few KB, the largest rarely past 100 KB.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Stripe's own default tolerance for the signed timestamp.
DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300
#: How long an event may sit as "received" before the sweeper puts it back on the queue.
DEFAULT_STALE_EVENT_SECONDS = 300
SECRET_FILE_NAME = "webhook_secret"
#: How often the clock re-evaluates people whose time-driven conditions fell due.
DEFAULT_CLOCK_INTERVAL_SECONDS = 300
#: New cases at or above this severity are posted to Slack (duplicate charges always are).
DEFAULT_SLACK_MIN_SEVERITY = "medium"
#: Recovery emails after the first failure of an invoice: at most this many reminders.
DEFAULT_DUNNING_REMINDERS = 2
#: The attempt at which Stripe stops retrying (Smart Retries' recommended default is 8 tries,
#: https://docs.stripe.com/billing/revenue-recovery/smart-retries); the last reminder goes out
#: after the attempt before it, so the customer can act before the final one.
DEFAULT_DUNNING_STRIPE_ATTEMPTS = 8
#: A new (or reopened) case's Slack alert and emails wait this long before they go, so that
#: related events still on their way can withdraw a case that later evidence clears. Stripe
#: does not deliver events in order (https://docs.stripe.com/webhooks#event-ordering) and
#: creates one payment's events together (1–2 s apart in the scenarios); a late event's first
#: four retries here come within 30 s (``worker.actors``: 1 s doubling, Dramatiq's jitter at
#: most doubles each). 60 s covers both and still tells an operator within the minute.
DEFAULT_ALERT_SETTLE_SECONDS = 60
#: Past an hour a window stops being a settle and starts hiding cases (and a value in
#: milliseconds would be read as hours): refused.
MAX_ALERT_SETTLE_SECONDS = 3600
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class Process(Enum):
    """Which billing-ops process reads the settings: it decides what may be left to a default.

    Only ``serve``, the all-in-one, may generate the webhook signing secret and run its own
    Redis. The Procfile processes run beside others on other machines, so a default there
    would be a silent mistake: a generated secret rejects every real Stripe delivery, and a
    web without ``REDIS_URL`` answers every webhook 503.
    """

    #: ``billing-ops serve`` (and ``secret``, which prints what serve uses): may generate.
    ALL_IN_ONE = "serve"
    #: ``billing-ops web``: ``STRIPE_WEBHOOK_SECRET`` and ``REDIS_URL`` must be set.
    WEB = "web"
    #: ``billing-ops worker``: ``REDIS_URL`` must be set.
    WORKER = "worker"
    #: Anything else (one-off commands, serve's children): a secret from the environment or
    #: the data dir's file, never a new one.
    COMMAND = "command"

    @property
    def required(self) -> tuple[str, ...]:
        """The variables this process refuses to start without."""
        return {
            Process.WEB: ("STRIPE_WEBHOOK_SECRET", "REDIS_URL"),
            Process.WORKER: ("REDIS_URL",),
        }.get(self, ())


#: What to do about each required variable, said when it is missing.
_REQUIRED_HINTS = {
    "STRIPE_WEBHOOK_SECRET": "set it to your Stripe webhook endpoint's signing secret (whsec_…); "
    "only billing-ops serve generates one",
    "REDIS_URL": "set it to the Redis all web and worker processes share (redis://HOST:6379/0); "
    "only billing-ops serve runs its own",
}


@dataclass(frozen=True)
class DunningSettings:
    """How often billing-ops emails a customer about one failed invoice.

    One email after the first failure, then at most ``reminders`` more spread up to the attempt
    before Stripe's last; never more than one per customer per day. With
    ``stripe_sends_emails`` (Stripe's own failed-payment emails are on) billing-ops sends none
    and only opens the case.
    """

    reminders: int = DEFAULT_DUNNING_REMINDERS
    stripe_attempts: int = DEFAULT_DUNNING_STRIPE_ATTEMPTS
    stripe_sends_emails: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything a billing-ops process needs to know about its environment."""

    data_dir: Path
    webhook_secrets: tuple[str, ...]
    database_url: str
    redis_url: str | None = None
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    slack_webhook_url: str | None = field(default=None, repr=False)
    smtp_url: str | None = field(default=None, repr=False)
    email_from: str | None = None
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_channel: str | None = None
    slack_api_base: str | None = None
    slack_min_severity: str = DEFAULT_SLACK_MIN_SEVERITY
    #: Seconds a new case's notifications wait before they go (0: at once).
    alert_settle_seconds: int = DEFAULT_ALERT_SETTLE_SECONDS
    portal_return_url: str | None = None
    public_base_url: str | None = None
    digest_email_to: str | None = None
    operator_token: str | None = field(default=None, repr=False)
    #: Signs the web console's session cookie; unset, one is generated in the data dir.
    session_secret: str | None = field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    signature_tolerance_seconds: int = DEFAULT_SIGNATURE_TOLERANCE_SECONDS
    stale_event_seconds: int = DEFAULT_STALE_EVENT_SECONDS
    clock_interval_seconds: int = DEFAULT_CLOCK_INTERVAL_SECONDS
    log_format: str = "auto"
    metrics_multiprocess_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR, read by prometheus too
    rules: RulesConfig = field(default_factory=RulesConfig)
    secret_generated: bool = False
    dunning: DunningSettings = field(default_factory=DunningSettings)

    @property
    def embedded_redis(self) -> bool:
        """True when no ``REDIS_URL`` is set and billing-ops runs its own Redis server."""
        return self.redis_url is None

    @property
    def redis_socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def effective_redis_url(self) -> str:
        """The configured Redis, or the embedded server's unix socket in the data dir."""
        return self.redis_url or f"unix://{self.redis_socket_path}"


LOG_FORMATS = ("auto", "json", "console")


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    process: Process = Process.COMMAND,
    existing_install: bool = False,
) -> Settings:
    """Build ``Settings`` from the environment (or the mapping given, for tests).

    ``process`` says which defaults are allowed (see ``Process``). ``existing_install`` is for
    commands that work on an existing install (``cases``, ``lookup``, ``events failed``…): they
    refuse a data dir that does not exist instead of creating an empty store wherever they run.
    """
    env = os.environ if environ is None else environ
    for name in process.required:
        if not (env.get(name) or "").strip():
            raise ConfigurationError(
                f"{name} is not set: billing-ops {process.value} needs it; {_REQUIRED_HINTS[name]}"
            )
    data_dir = _data_dir(env, must_exist=existing_install and not env.get("DATABASE_URL"))
    if process is Process.ALL_IN_ONE:
        secrets_, generated = _webhook_secrets(env.get("STRIPE_WEBHOOK_SECRET"), data_dir)
    else:
        secrets_, generated = _existing_secrets(env.get("STRIPE_WEBHOOK_SECRET"), data_dir)
    return Settings(
        data_dir=data_dir,
        webhook_secrets=secrets_,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'billing-ops.db'}",
        redis_url=_redis_url(env),
        stripe_api_key=env.get("STRIPE_API_KEY") or None,
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        slack_webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
        smtp_url=env.get("SMTP_URL") or None,
        email_from=env.get("EMAIL_FROM") or None,
        **_notification_settings(env),
        operator_token=env.get("OPERATOR_TOKEN") or None,
        session_secret=env.get("BILLING_OPS_SESSION_SECRET") or None,
        max_body_bytes=_positive_int(env, "BILLING_OPS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        signature_tolerance_seconds=_positive_int(
            env, "BILLING_OPS_SIGNATURE_TOLERANCE", DEFAULT_SIGNATURE_TOLERANCE_SECONDS
        ),
        stale_event_seconds=_positive_int(
            env, "BILLING_OPS_STALE_EVENT_SECONDS", DEFAULT_STALE_EVENT_SECONDS
        ),
        clock_interval_seconds=_positive_int(
            env, "BILLING_OPS_CLOCK_INTERVAL_SECONDS", DEFAULT_CLOCK_INTERVAL_SECONDS
        ),
        log_format=_choice(env, "BILLING_OPS_LOG_FORMAT", LOG_FORMATS),
        metrics_multiprocess_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        rules=rules_config(env),
        secret_generated=generated,
        dunning=dunning_settings(env),
    )


def dunning_settings(env: Mapping[str, str]) -> DunningSettings:
    """``BILLING_OPS_DUNNING_REMINDERS``, ``BILLING_OPS_DUNNING_STRIPE_ATTEMPTS`` and
    ``STRIPE_FAILED_PAYMENT_EMAILS`` (on when Stripe's own failed-payment emails are on)."""
    raw = env.get("BILLING_OPS_DUNNING_REMINDERS", "")
    try:
        reminders = DEFAULT_DUNNING_REMINDERS if raw == "" else int(raw)
    except ValueError:
        reminders = -1
    if reminders < 0:
        raise ConfigurationError(
            f"BILLING_OPS_DUNNING_REMINDERS must be a whole number, 0 or more, got {raw!r}"
        )
    stripe_emails = (env.get("STRIPE_FAILED_PAYMENT_EMAILS") or "").strip().lower()
    if stripe_emails not in TRUE_WORDS | FALSE_WORDS:
        raise ConfigurationError(
            f"STRIPE_FAILED_PAYMENT_EMAILS must be on or off, got {stripe_emails!r}"
        )
    return DunningSettings(
        reminders=reminders,
        stripe_attempts=_positive_int(
            env, "BILLING_OPS_DUNNING_STRIPE_ATTEMPTS", DEFAULT_DUNNING_STRIPE_ATTEMPTS
        ),
        stripe_sends_emails=stripe_emails in TRUE_WORDS,
    )


RULE_ENV_PREFIX = "BILLING_OPS_RULE_"


def rules_config(env: Mapping[str, str]) -> RulesConfig:
    """Rule thresholds: ``BILLING_OPS_RULE_<FIELD>`` overrides a ``RulesConfig`` default
    (whole numbers; comma-separated lists for tuple fields such as seat metadata keys or
    currency rates; text for the severity currency)."""
    known = {RULE_ENV_PREFIX + spec.name.upper() for spec in fields(RulesConfig)}
    unknown = sorted(k for k in env if k.startswith(RULE_ENV_PREFIX) and k not in known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigurationError(
            f"unknown rule setting {unknown[0]}; {hint}the rule settings are: "
            f"{', '.join(sorted(known))}"
        )
    overrides: dict[str, Any] = {}
    for spec in fields(RulesConfig):
        name = RULE_ENV_PREFIX + spec.name.upper()
        raw = env.get(name)
        if raw in (None, ""):
            continue
        if isinstance(spec.default, tuple):
            overrides[spec.name] = tuple(p.strip() for p in raw.split(",") if p.strip())
        elif isinstance(spec.default, str):
            overrides[spec.name] = raw.strip().lower()
        else:
            overrides[spec.name] = _positive_int(env, name, int(spec.default))  # type: ignore[arg-type]
    try:
        return RulesConfig(**overrides)
    except ValueError as error:  # e.g. a malformed currency rate
        raise ConfigurationError(f"{RULE_ENV_PREFIX}*: {error}") from error


def _notification_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Slack, email and link settings; a half-configured channel fails fast."""
    values = {
        "slack_bot_token": env.get("SLACK_BOT_TOKEN") or None,
        "slack_channel": env.get("SLACK_CHANNEL") or None,
        "slack_api_base": env.get("SLACK_API_BASE") or None,
        "slack_min_severity": (env.get("SLACK_MIN_SEVERITY") or DEFAULT_SLACK_MIN_SEVERITY).lower(),
        "portal_return_url": env.get("PORTAL_RETURN_URL") or None,
        "public_base_url": (env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
        "digest_email_to": env.get("DIGEST_EMAIL_TO") or None,
        "alert_settle_seconds": _settle_seconds(env),
    }
    if values["slack_min_severity"] not in SEVERITIES:
        raise ConfigurationError(
            f"SLACK_MIN_SEVERITY must be one of {', '.join(SEVERITIES)}, "
            f"got {env.get('SLACK_MIN_SEVERITY')!r}"
        )
    if bool(values["slack_bot_token"]) != bool(values["slack_channel"]):
        raise ConfigurationError("SLACK_BOT_TOKEN and SLACK_CHANNEL must be set together")
    smtp_url = env.get("SMTP_URL")
    if smtp_url and urlsplit(smtp_url).scheme not in ("smtp", "smtps"):
        raise ConfigurationError("SMTP_URL must start with smtp:// or smtps://")
    if smtp_url and not env.get("EMAIL_FROM"):
        raise ConfigurationError("SMTP_URL is set but EMAIL_FROM is not")
    return values


def _settle_seconds(env: Mapping[str, str]) -> int:
    """``BILLING_OPS_ALERT_SETTLE_SECONDS``: 0 (no window) up to an hour."""
    name = "BILLING_OPS_ALERT_SETTLE_SECONDS"
    raw = env.get(name) or ""
    try:
        value = DEFAULT_ALERT_SETTLE_SECONDS if raw.strip() == "" else int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_ALERT_SETTLE_SECONDS:
        raise ConfigurationError(
            f"{name} must be a whole number of seconds from 0 (no settle window) to "
            f"{MAX_ALERT_SETTLE_SECONDS}, got {raw!r}"
        )
    return value


def _data_dir(env: Mapping[str, str], *, must_exist: bool) -> Path:
    """The data dir, resolved; it must be a directory (or not exist yet, unless required)."""
    raw = env.get("BILLING_OPS_DATA_DIR") or DEFAULT_DATA_DIR
    path = Path(raw).resolve()
    if path.exists() and not path.is_dir():
        raise ConfigurationError(
            f"BILLING_OPS_DATA_DIR {path} is a file, not a directory: point it at a directory"
        )
    if must_exist and not path.exists():
        raise ConfigurationError(
            f"no billing-ops data directory at {path}: run this where `billing-ops serve` runs, "
            "or set BILLING_OPS_DATA_DIR or DATABASE_URL"
        )
    return path


#: The schemes redis-py connects to.
REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("REDIS_URL") or "").strip()
    if raw and urlsplit(raw).scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"REDIS_URL {raw!r} is not a Redis URL: use redis://HOST:6379/0 "
            "(rediss:// for TLS, unix:///PATH for a socket)"
        )
    return raw or None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name) or choices[0]
    if raw not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {value}")
    return value


def _existing_secrets(raw: str | None, data_dir: Path) -> tuple[tuple[str, ...], bool]:
    """Secrets from the environment or the data dir's file, never generating one."""
    if raw:
        return _webhook_secrets(raw, data_dir)
    path = data_dir / SECRET_FILE_NAME
    return ((path.read_text().strip(),), True) if path.exists() else ((), False)


def _webhook_secrets(raw: str | None, data_dir: Path) -> tuple[tuple[str, ...], bool]:
    """Secrets from ``STRIPE_WEBHOOK_SECRET`` (comma-separated during a rotation).

    Unset, a secret is generated once and kept in the data dir so that ``serve``, its
    workers and ``billing-ops secret`` all agree on it across restarts.
    """
    if raw:
        values = tuple(part.strip() for part in raw.split(",") if part.strip())
        if not values:
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET is set but holds no secret: set it to your endpoint's "
                "signing secret (whsec_…), two comma-separated during a rotation"
            )
        return values, False
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return (path.read_text().strip(),), True
    secret = "whsec_" + secrets.token_urlsafe(32)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this install won the race
        return (path.read_text().strip(),), True
    except OSError as error:
        raise ConfigurationError(
            f"BILLING_OPS_DATA_DIR {data_dir} cannot be written ({error.strerror or error}): "
            "point it at a folder this user can write"
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return (secret,), True
