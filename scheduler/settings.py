"""Typed settings, read from the environment (prefix ``LABQ_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STALE_AFTER_BEATS = 3
"""Heartbeats a run may miss before it is taken as abandoned."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABQ_", env_file=".env", extra="ignore")

    environment: str = Field(default="development", pattern="^(development|test|production)$")
    database_url: str = "sqlite:///labq.db"
    # The level of labq's own log on the console (`labq serve`, `labq worker`, ...): INFO adds
    # each solve run's course and every hold of SQLite's write lock of a second or more.
    log_level: str = Field(default="WARNING", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # JSON lines (time, level, logger, message, request_id, lab, run_id, worker_id) for a log
    # collector, or plain text; auto: text when the log goes to a terminal, JSON otherwise.
    log_format: str = Field(default="auto", pattern="^(auto|json|text)$")
    embedded_worker: bool = True
    # A token that Prometheus sends (Authorization: Bearer) to scrape /metrics and nothing else,
    # so a scrape config never carries an admin or auditor key. Kept only where the operator puts
    # it (the environment); compared in constant time. None: /metrics takes an admin/auditor key.
    metrics_token: SecretStr | None = Field(default=None, min_length=24, max_length=512)
    # A worker holding a run writes a heartbeat every worker_heartbeat_seconds, from a thread of
    # its own (a long CP-SAT call never holds it up); a run whose last beat is older than
    # worker_stale_after_seconds is taken as abandoned (its worker died or was stopped) and
    # re-queued, or failed with its reason after max_run_attempts attempts. The threshold must
    # span at least STALE_AFTER_BEATS beats, so a beat delayed by a busy database is not taken for
    # a death; the defaults allow seven. A crashed worker's run is taken over once it is stale and
    # the next sweep sees it: within about 16 s with an idle worker (workers sweep at every poll of
    # an empty queue), 20 s with only a server sweeping every stale_sweep_seconds (0: only workers
    # and `labq reoptimize` do), so runs end even when every worker is dead.
    worker_heartbeat_seconds: int = Field(default=2, ge=1, le=300)
    worker_stale_after_seconds: int = Field(default=15, ge=5, le=3600)
    max_run_attempts: int = Field(default=3, ge=1, le=20)
    stale_sweep_seconds: float = Field(default=5.0, ge=0, le=3600)
    max_request_bytes: int = Field(default=5_000_000, ge=1024)
    # `labq serve` closes a keep-alive connection idle this long. Longer than uvicorn's 5 s: while
    # the event loop validates a large body (10,000 cases: 1.3 s of CPU, several seconds on a busy
    # box) the close fires before the client's waiting request is read, and the client sees a
    # dropped connection.
    http_keep_alive_seconds: int = Field(default=30, ge=1, le=600)
    # Connections per process (SQLite and PostgreSQL); size the pool to the server's worker
    # threads (40 by default) so a burst of requests queues for a connection instead of timing out.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=30, ge=0, le=200)
    db_pool_timeout_seconds: int = Field(default=10, ge=1, le=300)
    # SQLite: how long a writer waits for the write lock before its request is refused with 503
    # and Retry-After (a client's patience is longer); reads never wait for it.
    db_busy_timeout_seconds: float = Field(default=5.0, ge=0.01, le=300)
    # Changes to one lab run one after another (services/labs.py lock_lab); a change that waits
    # longer than this for the one before it is refused with 503 and Retry-After. Bounded because
    # each waiter holds a server thread.
    lab_lock_wait_seconds: float = Field(default=15.0, ge=0.1, le=300)
    # A verified API key is trusted this long per process without a database check: a key
    # revoked in another process (another server worker, `labq keys revoke`) stops working
    # within this many seconds; in the revoking process at once. 0 checks every request.
    key_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # A web console session (docs/architecture.md §7.8) ends after this many minutes without a
    # request; signing out ends it at once, and revoking its key ends it at the next request.
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Failed authentications one client may make in a burst, and how fast that allowance
    # refills; past it the client gets 429 with Retry-After (api/throttle.py). 0 turns it off.
    auth_failure_burst: int = Field(default=20, ge=0, le=100_000)
    auth_failures_per_minute: float = Field(default=10.0, gt=0, le=100_000)
    # Rendered schedule reads kept per process (entries, least recently used dropped first).
    schedule_cache_entries: int = Field(default=256, ge=0, le=100_000)
    # Webhook deliveries: each post waits at most `timeout`; a failed one is retried after
    # base x 2^(attempt-1) seconds (capped, with jitter) until it is older than `max_age`. Only
    # the oldest pending delivery of a subscription is retried, so a low cap costs one request
    # a minute per dead receiver and bounds the delay after it returns to about a minute.
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    webhook_backoff_cap_seconds: float = Field(default=60.0, gt=0, le=86_400)
    webhook_max_age_seconds: float = Field(default=86_400.0, gt=0, le=30 * 86_400)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _stale_after_spans_beats(self) -> Settings:
        beats = STALE_AFTER_BEATS * self.worker_heartbeat_seconds
        if self.worker_stale_after_seconds < beats:
            raise ValueError(
                f"worker_stale_after_seconds ({self.worker_stale_after_seconds}) must be at least "
                f"{STALE_AFTER_BEATS} heartbeats ({STALE_AFTER_BEATS} x "
                f"worker_heartbeat_seconds = {beats})"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
