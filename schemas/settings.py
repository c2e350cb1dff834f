"""Typed settings from the environment (and an optional `.env`), validated at start."""

import sys
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.amqp_nodes import parse_nodes
from schemas.contacts import is_region
from schemas.hosts import DEFAULT_ALLOWED_HOSTS, parse_allowed_hosts


class Settings(BaseSettings):
    """The contract's variables plus a few tuning knobs with safe defaults."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", case_sensitive=False
    )

    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    database_url: str = "sqlite+aiosqlite:///./leadrouter.db"
    api_token: SecretStr | None = None
    api_allowed_hosts: str = DEFAULT_ALLOWED_HOSTS  # schemas/hosts.py: `*` for any
    log_format: Literal["console", "json"] | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    default_phone_region: str | None = None

    batch_size: int = Field(default=256, ge=1, le=10_000)
    batch_linger_ms: float = Field(default=2.0, ge=0, le=1000)
    prefetch_count: int = Field(default=1024, ge=1, le=65_535)
    delivery_limit: int = Field(default=5, ge=1, le=1000)
    db_retry_attempts: int = Field(default=6, ge=1, le=50)
    shutdown_grace_s: float = Field(default=10.0, gt=0)
    outbox_relay_interval_s: float = Field(default=2.0, gt=0)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_nodes(cls, value: str) -> str:
        """One node, or a cluster's nodes separated by commas (schemas/amqp_nodes.py)."""
        parse_nodes(value)
        return value

    @field_validator("api_allowed_hosts")
    @classmethod
    def _host_names(cls, value: str) -> str:
        parse_allowed_hosts(value)
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if not is_region(code):
            raise ValueError("must be an ISO 3166 region code with phone numbering, e.g. RU or DE")
        return code

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def allowed_hosts(self) -> frozenset[str] | None:
        """The Host names the API answers to; None: any."""
        return parse_allowed_hosts(self.api_allowed_hosts)

    @property
    def resolved_log_format(self) -> Literal["console", "json"]:
        if self.log_format is not None:
            return self.log_format
        return "console" if sys.stderr.isatty() else "json"
