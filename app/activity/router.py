"""HTTP endpoints of the activity domain."""

from fastapi import APIRouter

router = APIRouter(tags=["activity"])
