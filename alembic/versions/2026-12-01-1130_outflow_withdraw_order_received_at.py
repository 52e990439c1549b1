"""outflows can be withdrawn or cancelled; orders keep their first submission time

* ``outflows.status`` gains ``withdrawn`` (the member took back a pending registration)
  and ``cancelled`` (the home branch cancelled an approved one before departure, with
  ``cancel_reason``).
* ``members.name`` is rewritten into the one normal form the application now stores
  (``app.identity.validators.normalize_person_name``): NFKC, one middle dot, single
  spaces, none between CJK characters (``王　伟`` -> ``王伟``), so ``q=王伟`` finds it.
* ``service_orders.received_at`` is the arrival at the current organisation (its SLA
  clock, restarted by a transfer); ``submitted_at`` stays the resident's first
  submission. Existing transferred orders get their first submission back from the
  timeline's ``submit`` event.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('pending', 'active', 'rejected', 'returned')"
NEW_STATUSES = "status IN ('pending', 'active', 'rejected', 'returned', 'withdrawn', 'cancelled')"


# normalize_person_name in SQL (frozen here: a migration must not follow later code).
# The look-alike middle dots map to "·" before and after NFKC; whitespace between two
# CJK characters (ideographs, extensions, compatibility forms, the middle dot) goes.
NORMALISE_NAMES = """
UPDATE members AS m SET name = x.normal
FROM (
    SELECT id, regexp_replace(
        btrim(regexp_replace(
            translate(normalize(translate(name, '•‧・⋅．', '·····'), NFKC),
                      '•‧・⋅．', '·····'),
            '\\s+', ' ', 'g')),
        '(?<=[\\u2e80-\\u9fff\\uf900-\\ufaff\\U00020000-\\U0003134f·])'
        '\\s+'
        '(?=[\\u2e80-\\u9fff\\uf900-\\ufaff\\U00020000-\\U0003134f·])',
        '', 'g') AS normal
    FROM members
) AS x
WHERE x.id = m.id AND x.normal <> m.name AND x.normal <> ''
"""


def upgrade() -> None:
    op.drop_constraint(op.f("ck_outflows_status"), "outflows", type_="check")
    op.create_check_constraint(op.f("ck_outflows_status"), "outflows", NEW_STATUSES)
    op.add_column("outflows", sa.Column("cancel_reason", sa.String(length=200), nullable=True))
    op.execute(NORMALISE_NAMES)

    op.add_column(
        "service_orders", sa.Column("received_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE service_orders SET received_at = submitted_at")
    op.execute(
        """
        UPDATE service_orders AS o SET submitted_at = e.first_at
        FROM (
            SELECT order_id, min(created_at) AS first_at
            FROM service_order_events WHERE action = 'submit' GROUP BY order_id
        ) AS e
        WHERE e.order_id = o.id AND e.first_at < o.submitted_at
        """
    )
    op.alter_column("service_orders", "received_at", nullable=False)


def downgrade() -> None:
    op.execute("UPDATE service_orders SET submitted_at = received_at")
    op.drop_column("service_orders", "received_at")
    op.drop_column("outflows", "cancel_reason")
    op.execute("UPDATE outflows SET status = 'rejected' WHERE status IN ('withdrawn', 'cancelled')")
    op.drop_constraint(op.f("ck_outflows_status"), "outflows", type_="check")
    op.create_check_constraint(op.f("ck_outflows_status"), "outflows", OLD_STATUSES)
