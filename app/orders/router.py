"""HTTP endpoints of the orders domain."""

from fastapi import APIRouter

router = APIRouter(tags=["orders"])
