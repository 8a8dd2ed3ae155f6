"""The webapp's settings: the scheduler's (it queues work and signs runner tokens with the
same values) plus what only the web side needs. Read once, from the seed's variable names."""

from __future__ import annotations

from typing import Annotated, Any

import limits
from pydantic import AfterValidator, Field, field_validator
from pydantic_settings import NoDecode

from runner_image.settings import EnvSettings
from tasks.settings import SchedulerSettings, SigningSecret

DEFAULT_CORS_ORIGINS = ("http://localhost:3000", "http://cloudemy.local")

CommaSeparated = Annotated[tuple[str, ...], NoDecode]


def _rate_limit(value: str) -> str:
    try:
        limits.parse_many(value)
    except ValueError as exc:
        raise ValueError(f"not a rate limit like '30/minute;500/hour' ({exc})") from exc
    return value


RateLimit = Annotated[str, AfterValidator(_rate_limit)]


class WebappSettings(SchedulerSettings):
    mongo_uri: str = Field(pattern=r"^(mongodb|mongodb\+srv|mongomock)://")
    db_name: str = "cloudemy"
    # Signs the users' bearer tokens.
    secret_key: SigningSecret
    cors_origins: CommaSeparated = DEFAULT_CORS_ORIGINS
    access_token_ttl_seconds: int = Field(default=3600, ge=60)
    max_code_bytes: int = Field(default=64 * 1024, ge=1)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    bundle_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # The LLM gateway (webapp/blueprints/llm_gateway.py): the most Chat Completions calls
    # one submission's runner may make through it, retries included.
    llm_gateway_max_calls: int = Field(default=4, ge=1)
    # Rate limits (webapp/limits.py), in the `limits` notation ("30/minute;500/hour"),
    # counted in Redis (RATE_LIMIT_STORAGE_URI, default REDIS_URL).
    rate_limits_enabled: bool = True
    rate_limit_storage_uri: str | None = None
    rate_limit_login: RateLimit = "60/minute"  # per client address
    rate_limit_register: RateLimit = "60/minute;600/hour"  # per client address
    rate_limit_submit: RateLimit = "30/minute"  # per account
    rate_limit_submit_per_address: RateLimit = "600/minute"
    rate_limit_join: RateLimit = "30/minute"  # per client address: join codes are guessable
    rate_limit_regrade: RateLimit = "30/minute;300/hour"  # per account: regrades, references
    # Failed logins per account: free ones, then a back-off doubling up to the maximum.
    login_free_failures: int = Field(default=5, ge=1)
    login_backoff_max_seconds: int = Field(default=900, ge=1)
    # Proxies in front of the backend whose X-Forwarded-For is trusted (1 behind the Ingress).
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)
    # Event streams (GET /api/submissions/<id>/events) a worker serves at once (each holds
    # a thread), how long one lasts, and the heartbeat that keeps proxies from closing it.
    event_streams_per_worker: int = Field(default=4, ge=1)
    event_stream_max_seconds: int = Field(default=3600, ge=10)
    event_stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>`; without
    # one set, /metrics is refused.
    metrics_token: SigningSecret | None = None
    # Languages the runners can build; None means every language the runner knows (the
    # runner image installs all of them). The local launcher also checks this machine.
    runner_languages: CommaSeparated | None = None
    # Cohort alerts of GET /api/assignments/<id>/stats: a test or fail tag that at least
    # this share of the judged students fail in their latest submission, once at least
    # STATS_ALERT_MIN_STUDENTS of them were judged.
    stats_alert_share: float = Field(default=0.4, gt=0, le=1)
    stats_alert_min_students: int = Field(default=10, ge=1)
    # The sweep (webapp/sweeper.py, a pass per RECONCILE_INTERVAL_SECONDS): a submission
    # still `queued` this long after its task was sent is sent again; one `scheduled` or
    # `running` this long past RUNNER_MAX_DEADLINE_SECONDS (its runner started, never
    # reported) gets a fresh runner up to SWEEP_MAX_RELAUNCHES times, then ends in `error`.
    sweep_requeue_after_seconds: int = Field(default=600, ge=1)
    sweep_grace_seconds: int = Field(default=600, ge=0)
    sweep_max_relaunches: int = Field(default=1, ge=0, le=5)

    @field_validator("cors_origins", "runner_languages", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class ServerSettings(EnvSettings):
    """Where `cloudemy serve` and `cloudemy dev` listen, and how many gunicorn workers
    `serve` runs (see docs/deploy.md, "Sizing", for why 2)."""

    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = Field(default=2, ge=1, le=64)


class ServeSettings(WebappSettings, ServerSettings):
    """Everything `cloudemy serve` needs, checked together before gunicorn starts."""

    @field_validator("mongo_uri")
    @classmethod
    def _a_real_mongodb(cls, value: str) -> str:
        if value.startswith("mongomock://"):
            raise ValueError(
                "mongomock:// is the in-process stand-in of `cloudemy dev`; a served backend "
                "needs a real MongoDB (mongodb://...)"
            )
        return value
