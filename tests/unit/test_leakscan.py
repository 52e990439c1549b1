from tests.leakscan import FINDINGS


def test_scan():
    FINDINGS.scan("x", '{"id":"440301199001011234","p":"13812345678"}')
    found = FINDINGS.take()
    assert len(found) == 2, found
    FINDINGS.scan("x", '{"id":"4403**********1234","p":"138****5678","t":"2026-11-23T12:00:00"}')
    assert FINDINGS.take() == []
