"""HTTP endpoints of the study domain."""

from fastapi import APIRouter

router = APIRouter(tags=["study"])
