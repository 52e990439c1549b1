"""Mount the console on the application (called from ``create_app``)."""

from __future__ import annotations

from fastapi import FastAPI

from app.console import desk, ledgers, router
from app.console.web import install_error_pages, mount_static


def install(app: FastAPI) -> None:
    for pages in (router.router, ledgers.router, desk.router):
        app.include_router(pages)
    mount_static(app)
    install_error_pages(app)
