"""HTTP endpoints of the organization domain."""

from fastapi import APIRouter

router = APIRouter(tags=["organization"])
