"""What one running API app holds, built by the lifespan and kept on `app.state.api`."""

from dataclasses import dataclass
from random import Random

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.broker import Broker
from api.metrics import ApiMetrics
from schemas.settings import Settings


@dataclass(frozen=True)
class ApiState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]  # GET requests: no SQLite write lock
    rng: Random
    broker: Broker
    metrics: ApiMetrics
