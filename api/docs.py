"""OpenAPI documentation of error answers, so `/docs` lists every status a route can give."""

from typing import Any

from api.models.common import ErrorOut

_DESCRIPTIONS = {
    401: "Missing or wrong bearer token (when API_TOKEN is set)",
    404: "Unknown id",
    409: "Conflicts with the current state",
    503: "Message broker or database unavailable; retry",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}
