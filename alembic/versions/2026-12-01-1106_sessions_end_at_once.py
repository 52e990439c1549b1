"""sessions end at once: auth_changed notifications, refresh double-send replay

Access tokens are checked against the account's standing (disabled, roles, the login
session still open) kept in each process's cache (app/identity/sessions.py). These
triggers tell every process when that standing changes, whoever writes it (the API, the
CLI, an operator's SQL): ``pg_notify('auth_changed', <account id>)``, delivered at commit.

``refresh_tokens.used_by`` and ``successor_sealed`` let a double-sent refresh token get
the same pair again within a short window (app/identity/service.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One statement per string: asyncpg prepares what it is given.
_CREATE = [
    """
CREATE FUNCTION auth_changed_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'auth_changed', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text
    );
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION auth_changed_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('auth_changed', a.id::text)
        FROM accounts a WHERE a.member_id = NEW.member_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('auth_changed', a.id::text)
        FROM accounts a WHERE a.member_id = OLD.member_id;
    END IF;
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION auth_changed_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_changed', NEW.account_id::text);
    RETURN NULL;
END $$
""",
    """
CREATE TRIGGER accounts_auth_changed
    AFTER UPDATE OF disabled_at, is_superadmin, member_id ON accounts
    FOR EACH ROW
    WHEN (OLD.disabled_at IS DISTINCT FROM NEW.disabled_at
          OR OLD.is_superadmin IS DISTINCT FROM NEW.is_superadmin
          OR OLD.member_id IS DISTINCT FROM NEW.member_id)
    EXECUTE FUNCTION auth_changed_account()
""",
    """
CREATE TRIGGER accounts_auth_deleted
    AFTER DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION auth_changed_account()
""",
    """
CREATE TRIGGER role_assignments_auth_changed
    AFTER INSERT OR UPDATE OR DELETE ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION auth_changed_role()
""",
    """
CREATE TRIGGER refresh_tokens_auth_changed
    AFTER UPDATE OF revoked_at ON refresh_tokens
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION auth_changed_session()
""",
]


def upgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("used_by", sa.LargeBinary(), nullable=True))
    op.add_column("refresh_tokens", sa.Column("successor_sealed", sa.LargeBinary(), nullable=True))
    for statement in _CREATE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER refresh_tokens_auth_changed ON refresh_tokens")
    op.execute("DROP TRIGGER role_assignments_auth_changed ON role_assignments")
    op.execute("DROP TRIGGER accounts_auth_deleted ON accounts")
    op.execute("DROP TRIGGER accounts_auth_changed ON accounts")
    op.execute("DROP FUNCTION auth_changed_session()")
    op.execute("DROP FUNCTION auth_changed_role()")
    op.execute("DROP FUNCTION auth_changed_account()")
    op.drop_column("refresh_tokens", "successor_sealed")
    op.drop_column("refresh_tokens", "used_by")
