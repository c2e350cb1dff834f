"""`/health`: open (no prefix, no token), says whether the database and the broker answer."""

from fastapi import APIRouter, Response

from api.deps import StateDep
from api.models.health import Health
from api.routes.params import HEALTH_PATH
from db.health import database_answers

routes = APIRouter(tags=["health"])


@routes.get(HEALTH_PATH, response_model=Health, responses={503: {"model": Health}})
async def health(state: StateDep, response: Response) -> Health:
    """200 while the database answers (the broker may be down: the API still serves reads)."""
    database = await database_answers(state.read_sessions)
    if not database:
        response.status_code = 503
    return Health(
        status="ok" if database else "down",
        database="ok" if database else "down",
        broker="ok" if state.broker.is_up else "down",
    )
