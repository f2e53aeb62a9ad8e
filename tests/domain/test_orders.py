import pytest

from btc_trader.domain.orders import (
    CLIENT_ORDER_ID,
    TransitionError,
    check_transition,
    client_order_id,
)


def test_client_order_id_is_stable_unique_and_exchange_safe():
    first = client_order_id("2023-03-11T12-00-00-exec-1")
    assert first == client_order_id("2023-03-11T12-00-00-exec-1")
    assert first != client_order_id("2023-03-11T12-00-00-exec-2")
    assert CLIENT_ORDER_ID.match(first) and len(first) <= 36
    with pytest.raises(ValueError):
        client_order_id("")


@pytest.mark.parametrize(("current", "new", "ok"), [
    ("PENDING", "FILLED", True), ("PENDING", "FAILED", True), ("FAILED", "FILLED", True),
    ("FILLED", "REJECTED", False), ("REJECTED", "FILLED", False), ("PARTIAL", "PENDING", False),
    ("PENDING", "UNKNOWN", True), ("UNKNOWN", "FILLED", True), ("UNKNOWN", "OPEN", True), ("OPEN", "FILLED", True),
    ("OPEN", "EXPIRED", True), ("EXPIRED", "FILLED", False), ("OPEN", "REJECTED", False), ("UNKNOWN", "PENDING", False),
])
def test_transitions(current, new, ok):
    if ok:
        check_transition(current, new)
    else:
        with pytest.raises(TransitionError):
            check_transition(current, new)
