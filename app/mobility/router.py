"""HTTP endpoints of the mobility domain."""

from fastapi import APIRouter

router = APIRouter(tags=["mobility"])
