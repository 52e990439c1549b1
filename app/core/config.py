"""Settings: one object, read from the environment (prefix ``APP_``) and ``.env``.

Outside ``dev``/``test`` the placeholder secrets are refused, so a production
deployment cannot start with the keys that are published in this repository.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core import clock

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
# 32 zero-ish bytes, urlsafe base64: fine for a laptop, refused in prod.
DEV_PII_KEY = base64.urlsafe_b64encode(b"branchlink-dev-only-pii-key-32b!").decode()
DEV_PII_INDEX_KEY = base64.urlsafe_b64encode(b"branchlink-dev-only-index-key-32").decode()
DEV_WECHAT_APPID = "wx-dev-simulator"
DEV_WECHAT_SECRET = "dev-simulator-secret"

Env = Literal["dev", "test", "prod"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APP_", env_file=".env", extra="ignore", populate_by_name=True
    )

    env: Env = "dev"
    data_dir: Path = Path("./.data")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("APP_DATABASE_URL", "DATABASE_URL")
    )
    db_pool_size: int = 10
    db_max_overflow: int = 5
    # How long a request waits for a pooled connection before it is told 503.
    db_pool_timeout_s: float = 3.0
    db_statement_timeout_ms: int = 15_000
    # asyncpg connections for the check-in hot path, beside the engine's pool.
    db_driver_pool_size: int = 10
    # Behind PgBouncer in transaction mode (1.18 tracks no prepared statements): unnamed
    # statements only, and no startup parameters PgBouncer refuses (docs/scaling.md).
    db_pgbouncer: bool = False
    # A URL straight to the primary, for what cannot go through transaction pooling
    # (LISTEN for the auth cache, migrations); default: the database URL.
    database_direct_url: str | None = None
    # A streaming replica for ledgers, statistics and leaderboards; reads fall back to
    # the primary while its replay lags more than replica_max_lag_s (or it is down).
    database_replica_url: str | None = None
    replica_max_lag_s: float = 5.0

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    cors_origins: list[str] = []
    # Proxies whose X-Forwarded-For is believed (CIDRs or addresses, comma-separated):
    # the client is the rightmost address in it that is not one of them.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = [
        IPv4Network("127.0.0.1/32"),
        IPv6Network("::1/128"),
    ]
    docs_enabled: bool | None = None  # default: on outside prod
    # Run the outbox worker inside the API process (single-machine mode).
    worker_in_process: bool = False
    # /metrics: a bearer token for the API port (required there in prod: without it the
    # API port serves no metrics), and/or a port of its own for the serving processes.
    metrics_token: str | None = None
    metrics_port: int | None = None
    # Seconds between flushes of the buffered access log (see app/core/logging.py).
    log_flush_interval_s: float = 0.5

    # Access tokens: HS256 with a kid -> secret map; the current kid signs.
    jwt_secret: str = DEV_JWT_SECRET
    jwt_keys: dict[str, str] = {}
    jwt_current_kid: str = "k1"
    jwt_issuer: str = "branchlink"
    jwt_audience: str = "branchlink-api"
    access_token_ttl_s: int = 600
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # A refresh token presented again this soon by the same client (address and
    # User-Agent) gets the pair its first use got (a phone's double-send); later or
    # from elsewhere it still revokes the whole login.
    refresh_reuse_grace_s: int = 30

    # Personal data at rest: "1:<b64>,2:<b64>"; the current version encrypts.
    pii_key: str = DEV_PII_KEY
    pii_keys: str | None = None
    pii_key_version: int = 1
    pii_algorithm: Literal["sm4-gcm", "aes-256-gcm"] = "sm4-gcm"
    pii_index_key: str = DEV_PII_INDEX_KEY

    wechat_appid: str = DEV_WECHAT_APPID
    wechat_secret: str = DEV_WECHAT_SECRET
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_s: float = 5.0
    # Mount the WeChat simulator at /_wechat and point the client at it.
    wechat_simulator: bool | None = None  # default: on in dev when no real appid is set

    demo_data: bool = True
    qr_secret: str = DEV_JWT_SECRET + "-qr"
    # dev/test only: run the app's clock this far ahead ("3d", "12h", "90m", seconds).
    clock_offset: timedelta = timedelta(0)

    @field_validator("clock_offset", mode="before")
    @classmethod
    def _parse_clock_offset(cls, value: object) -> timedelta:
        if value is None or isinstance(value, str | int | float | timedelta):
            return clock.parse_offset(value)
        raise ValueError("clock offset: write e.g. 3d, 12h, 90m, 30s or 3600")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [item for item in (part.strip() for part in text.split(",")) if item]
        if isinstance(value, list):
            return [
                ip_network(item, strict=False) if isinstance(item, str) else item for item in value
            ]
        return value

    @model_validator(mode="after")
    def _refuse_placeholders_in_prod(self) -> Settings:
        if self.env != "prod":
            return self
        problems = []
        if self.jwt_secret == DEV_JWT_SECRET and not self.jwt_keys:
            problems.append("APP_JWT_SECRET")
        if DEV_JWT_SECRET in self.jwt_keys.values():
            problems.append("APP_JWT_KEYS")
        if self.pii_key == DEV_PII_KEY and not self.pii_keys:
            problems.append("APP_PII_KEY")
        if self.pii_keys and DEV_PII_KEY in self.pii_keys:
            problems.append("APP_PII_KEYS")
        if self.pii_index_key == DEV_PII_INDEX_KEY:
            problems.append("APP_PII_INDEX_KEY")
        if self.qr_secret == DEV_JWT_SECRET + "-qr":
            problems.append("APP_QR_SECRET")
        if self.wechat_appid == DEV_WECHAT_APPID or self.wechat_secret == DEV_WECHAT_SECRET:
            problems.append("APP_WECHAT_APPID/APP_WECHAT_SECRET")
        if self.wechat_simulator:
            problems.append("APP_WECHAT_SIMULATOR (the simulator cannot run in prod)")
        if not self.database_url:
            problems.append("DATABASE_URL (prod never starts the embedded PostgreSQL)")
        if self.clock_offset:
            problems.append("APP_CLOCK_OFFSET (the clock cannot be moved in prod)")
        if problems:
            raise ValueError(
                "prod refuses development defaults or missing settings for: " + ", ".join(problems)
            )
        self.demo_data = False
        return self

    @property
    def simulator_enabled(self) -> bool:
        if self.env == "prod":
            return False
        if self.wechat_simulator is not None:
            return self.wechat_simulator
        return self.env == "dev" and self.wechat_appid == DEV_WECHAT_APPID

    @property
    def metrics_on_api_port(self) -> bool:
        """Outside prod always; in prod only behind ``APP_METRICS_TOKEN``."""
        return self.env != "prod" or bool(self.metrics_token)

    @property
    def docs_on(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else self.env != "prod"

    @property
    def signing_keys(self) -> dict[str, str]:
        return dict(self.jwt_keys) if self.jwt_keys else {self.jwt_current_kid: self.jwt_secret}

    @property
    def pii_keyring_spec(self) -> str:
        return self.pii_keys or f"{self.pii_key_version}:{self.pii_key}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
