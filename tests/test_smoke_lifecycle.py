"""A whole referral life, as the README walks through it."""

from tests.support import Api, assess_body, service_body


def test_referral_moves_from_referred_to_closed(lpsk: Api, kemensos: Api) -> None:
    created = lpsk.create_ok("KEMENSOS")
    rid = created["id"]
    assert created["status"] == "referred"
    assert created["reference"].startswith("RJK-")

    assert kemensos.act(rid, "assess", assess_body()).json()["status"] == "assessed"
    assert kemensos.act(rid, "serve", service_body()).json()["status"] == "served"
    closed = kemensos.act(rid, "close", {"outcome": "completed"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["closure"]["outcome"] == "completed"

    actions = [h["action"] for h in lpsk.history(rid).json()]
    assert actions == ["create", "assess", "serve", "close:completed"]
