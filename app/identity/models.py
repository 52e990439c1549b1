"""WeChat accounts and refresh-token families."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, LargeBinary, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk


class Account(Base):
    """A WeChat user of the mini-program. ``member_id`` is set once he binds to the roster."""

    __tablename__ = "accounts"

    id: Mapped[int] = pk()
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="SET NULL"), unique=True
    )
    display_name: Mapped[str | None] = mapped_column(String(50))
    is_superadmin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class RefreshToken(Base):
    """One link of a rotation chain. Only the SHA-256 of the token is stored."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = pk()
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set with used_at: SHA-256 of the client (address, User-Agent) that used it, and
    # the pair it got, sealed under the token itself (app.core.security.seal_with_token).
    used_by: Mapped[bytes | None] = mapped_column(LargeBinary)
    successor_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at()


class ConsoleTicket(Base):
    """A web-console login ticket, shown as a QR code and confirmed from the mini-program.

    ``id`` is public (it is in the QR code); only the browser that asked for it holds the
    poll secret (its SHA-256 is stored) and can turn a confirmed ticket into a session.
    """

    __tablename__ = "console_tickets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    poll_hash: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE")
    )
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class ConsoleSession(Base):
    """A web-console session (cookie): revocable, tied to its account. Only the SHA-256
    of the cookie value is stored; ``csrf_token`` is the synchronizer token of its forms."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = pk()
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
