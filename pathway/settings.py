"""One Settings object, read from the environment (``PATHWAY_*``) once, failing fast on bad values.

Nothing reads the environment at import: the composition root (``pathway.cli``) builds Settings.
"""

from __future__ import annotations

from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pathway.clinical.errors import PathwayError

DEFAULT_DATABASE_URL = "sqlite:///pathway.db"
DEFAULT_POOL_SIZE = 20
# The rule pack a deployment assesses with (rules/packs/<id>/): the default pathway unless a county
# selects its own edition. rules.registry.DEFAULT_PACK_ID names the same pack (a test checks).
DEFAULT_PACK_ID = "sangao-cn"
# How long an answer kept for an ``Idempotency-Key`` is replayed at least: the daily retention run
# deletes older ones (a key sent again after that is processed as new: its readings come back
# ``duplicate``). Gateways retry within minutes or hours; this covers one offline for weeks.
DEFAULT_IDEMPOTENCY_RETENTION_DAYS = 30
# Audit rows are a legal record: kept forever unless an operator sets a retention.
KEEP_FOREVER = 0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATHWAY_", frozen=True, extra="forbid")

    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL connections each server process keeps open (and half as many more at a peak).
    database_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1, le=500)
    # How long a request waits for a pooled connection when all are in use, before it is answered
    # 503 with Retry-After (PostgreSQL; SQLite requests take turns in the process instead).
    database_pool_timeout_seconds: float = Field(default=2, gt=0, le=60)
    # The API's PostgreSQL sessions: a statement waiting this long for a lock (another request's
    # patient row lock) and any statement running this long are cancelled, and the request answered
    # 503 with Retry-After. 0 turns either off (wait, or run, without limit).
    database_lock_timeout_seconds: float = Field(default=2, ge=0, le=3600)
    database_statement_timeout_seconds: float = Field(default=30, ge=0, le=86_400)
    clinic_timezone: str = "Asia/Shanghai"
    # The pack id whose edition in force the API, the workbench, the scheduler and the demo use; an
    # unknown id stops the program at start (the registry refuses it).
    pack_id: str = Field(default=DEFAULT_PACK_ID, pattern=r"^[a-z][a-z0-9-]*$")
    # How long a server process trusts an authenticated key before asking the database again:
    # a revoked key stops working within this time. 0 asks the database on every request.
    key_cache_seconds: float = Field(default=15, ge=0, le=3600)
    # Requests per second per API key (a token bucket; 0 turns limiting off) and the burst allowed.
    rate_limit_per_second: float = Field(default=200, ge=0)
    rate_limit_burst: int = Field(default=400, ge=1)
    # Failed authentications per client address (a token bucket; 0 turns it off): past the burst,
    # the address's requests are refused (429) without their keys being looked up.
    auth_failures_per_second: float = Field(default=1, ge=0)
    auth_failures_burst: int = Field(default=30, ge=1)
    # The largest request body accepted (a 1,000-reading batch or FHIR Bundle fits many times over).
    max_body_bytes: int = Field(default=4_194_304, ge=1024)
    # The daily retention run (``pathway.runs.retention``): kept Idempotency-Key answers are deleted
    # this many days after they were given (0 keeps them forever); audit rows only when a retention
    # is set (0, the default, keeps them forever).
    idempotency_retention_days: int = Field(default=DEFAULT_IDEMPOTENCY_RETENTION_DAYS, ge=0)
    audit_retention_days: int = Field(default=KEEP_FOREVER, ge=0)
    # One line a request (method, path, status, duration, the key's prefix; never a key or a body),
    # logged as ``pathway.access`` at INFO; ``pathway serve`` prints it on stdout.
    access_log: bool = True
    # Webhook delivery by the scheduler (operational, not clinical): how often it runs, how many
    # deliveries a round claims, the receiver's time to answer, the retry backoff (base·2^n seconds,
    # capped) and the consecutive failed attempts after which a subscription is disabled.
    webhook_interval_seconds: float = Field(default=5, gt=0, le=3600)
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    webhook_timeout_seconds: float = Field(default=5, gt=0, le=60)
    webhook_backoff_base_seconds: float = Field(default=5, gt=0, le=3600)
    webhook_backoff_cap_seconds: float = Field(default=3600, gt=0, le=86_400)
    webhook_max_failures: int = Field(default=16, ge=1, le=1000)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("PATHWAY_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return url

    @field_validator("clinic_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)


class BadSetting(PathwayError):
    """A ``PATHWAY_*`` value that cannot be used: the program stops before it starts anything."""

    code = "bad-setting"
    status = 500


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def read_settings(kind: type[SettingsT]) -> SettingsT:
    """``kind`` read from the environment, or :class:`BadSetting` naming the variable (never its value:
    it may be a secret)."""
    try:
        return kind()
    except ValidationError as error:
        first = error.errors()[0]
        prefix = str(kind.model_config.get("env_prefix", ""))
        name = prefix + "_".join(str(part) for part in first["loc"]).upper()
        message = str(first["msg"]).removeprefix("Value error, ")
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise BadSetting(message + more, name) from None
