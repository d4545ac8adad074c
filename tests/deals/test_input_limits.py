"""POST /deal with input that used to end in a 500: 309-digit sizes, key paths too long for the
file system. Each is a 400 naming the field, and no boost runs."""
import pytest

from shared import models

HUGE = "9" * 309  # float("9" * 309) is inf: int(inf) raised OverflowError, a 500


@pytest.mark.parametrize("change,field", [
    ({"pieceSize": HUGE}, "pieceSize"),
    ({"pieceSize": HUGE + " GiB"}, "pieceSize"),
    ({"carSize": HUGE}, "carSize"),
    ({"carSize": "9" * 5000}, "carSize"),
    ({"keyPath": "k" * 256}, "keyPath"),  # one component over NAME_MAX: ENAMETOOLONG
    ({"keyPath": "d/" * 3000 + "key"}, "keyPath"),  # the whole path over PATH_MAX
])
async def test_oversized_values_are_400_and_start_no_process(api, db, fake_boost, proposal, change, field):
    response = await api.post("/deal", json={**proposal, **change})
    assert response.status == 400, await response.text()
    answer = await response.json()
    assert field in answer["error"] and "detail" in answer
    assert "kkkkkkkk" not in answer["error"]  # the key path is never echoed
    assert fake_boost.calls() == []
    assert await db[models.DEAL_STATE].count_documents({}) == 0
