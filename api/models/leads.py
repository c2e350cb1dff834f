"""Leads: one per normalised e-mail."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uuid: str = Field(examples=["5b0c0d3e-8a4b-4f8e-9c39-0a8d3c1e2f11"])
    email: str = Field(examples=["client@example.com"])
    created_at: datetime
