"""Closed positions from trade records: PnL from the wallet's accounting, and why each closed."""

import pytest

from btc_trader.domain.positions import FLATTEN, SIGNAL, UNRECORDED, close_reason, positions


def fill(n, side, qty, price, fee=0.1, pnl=None, reasons=(), status="FILLED"):
    record = {"trade_id": f"t{n:03d}", "symbol": "BTC-USD", "side": side, "status": status, "filled_qty": qty,
              "avg_price": price, "fee_usd": fee, "created_at": 1_000 + n * 900, "settled_at": 1_000 + n * 900,
              "risk_reasons": list(reasons)}
    if pnl is not None:
        record["realised_pnl_usd"] = pnl
    return record


def test_round_trips_add_up_and_say_why_they_closed():
    trades = [
        fill(1, "BUY", 0.01, 20_000), fill(2, "BUY", 0.01, 21_000),
        fill(3, "SELL", 0.005, 22_000, pnl=9.0), fill(4, "SELL", 0.015, 22_500, pnl=25.0),
        fill(5, "BUY", 0.02, 22_000),
        fill(6, "SELL", 0.02, 19_000, pnl=-61.0, reasons=["flatten: selling the whole position (0.02000000 BTC) "
                                                          "because the kill switch is engaged", "kill_switch: ..."]),
        fill(7, "BUY", 0.001, 19_500), fill(8, "BUY", 0.001, 0, status="REJECTED"),
    ]
    closed, still_open = positions(reversed(trades))  # the store lists newest first
    assert [p.closed_by for p in closed] == [SIGNAL, FLATTEN]
    first, second = closed
    assert first.fills == 4 and first.bought_btc == pytest.approx(0.02) and first.pnl_usd == pytest.approx(34.0)
    assert first.cost_usd == pytest.approx(0.01 * 20_000 + 0.01 * 21_000 + 0.2)
    assert first.pnl_pct == pytest.approx(34.0 / first.cost_usd * 100)
    assert (first.opened_at, first.closed_at) == (1_900, 4_600) and first.complete
    assert second.pnl_usd == pytest.approx(-61.0) and second.fills == 2
    assert still_open is not None and still_open.closed_at is None and still_open.bought_btc == pytest.approx(0.001)


def test_a_position_whose_buys_are_not_listed_is_flagged():
    closed, still_open = positions([fill(9, "SELL", 0.01, 20_000, pnl=5.0), fill(10, "BUY", 0.01, 20_000)])
    (only,) = closed
    assert not only.complete and only.opened_at is None and only.pnl_pct is None and only.pnl_usd == 5.0
    assert still_open.complete


def test_close_reason_needs_the_recorded_reasons():
    assert close_reason({"side": "SELL", "risk_reasons": []}) == SIGNAL
    assert close_reason({"side": "SELL"}) == UNRECORDED
    assert positions([]) == ([], None)
