"""HTTP endpoints of the identity domain."""

from fastapi import APIRouter

router = APIRouter(tags=["identity"])
