"""``GET /me`` in one statement: the account, its member, home organisation and roles,
and the member's open outflow with what its next actions need (the location consent).

It spans identity, members, organisation and mobility tables because ``/me`` composes
them (see :mod:`app.me.service`); each domain's rules still shape its part.
"""

from __future__ import annotations

from sqlalchemy import text

from app.core.db import ConnectionSource, DriverStatement, Row

# Columns of the outflow keep the model's names (``id``, ``status``...): the row is
# handed to the mobility rules as the outflow.
_ME = DriverStatement.of(
    text(
        """
SELECT a.id AS account_id, a.display_name, a.is_superadmin, a.member_id,
       a.disabled_at IS NOT NULL AS disabled,
       m.id AS m_id, m.name AS m_name, m.gender AS m_gender, m.birth_date AS m_birth_date,
       m.status AS m_status, m.joined_on AS m_joined_on,
       m.id_number_masked AS m_id_number_masked, m.phone_masked AS m_phone_masked,
       h.id AS home_id, h.name AS home_name, h.kind AS home_kind,
       CASE WHEN m.id IS NULL THEN '[]' ELSE (
           SELECT coalesce(json_agg(json_build_array(r.id, r.role, o.id, o.name, o.kind)
                                    ORDER BY o.path, r.role), '[]')
           FROM role_assignments r JOIN organizations o ON o.id = r.org_id
           WHERE r.member_id = m.id
       )::text END AS roles,
       f.id, f.status, f.certificate_no, f.destination_region_code, f.checkin_status,
       f.checkin_due_on, f.report_due_on, f.lost_contact_on, f.transfer_suggest_on,
       f.expected_return_on, f.version,
       coalesce((SELECT c.granted FROM member_consents c
                 WHERE c.member_id = m.id AND c.kind = 'location'
                 ORDER BY c.id DESC LIMIT 1), false) AS location_consent
FROM accounts a
LEFT JOIN members m ON m.id = a.member_id
LEFT JOIN organizations h ON h.id = m.home_org_id
LEFT JOIN LATERAL (
    SELECT * FROM outflows x
    WHERE x.member_id = m.id AND x.status IN ('pending', 'active')
    ORDER BY x.id DESC
    LIMIT 1
) AS f ON true
WHERE a.id = :account_id
"""
    )
)


async def me(source: ConnectionSource, account_id: int) -> Row | None:
    return await _ME.read_row(source, account_id=account_id)
