"""The executor records why it traded, so `local trades` can tell a SELL signal from a flatten."""

from dataclasses import replace

import pytest
from moto import mock_aws

from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.domain.positions import FLATTEN, SIGNAL, positions
from btc_trader.services.trading import ExecutionService
from btc_trader.storage_schema import PRICES, TRADES, TRADING_STATE
from tests.aws_fakes import create_table
from tests.services.test_trading_service import LIMITS, NOW, PAPER, Risk, prediction, store_price

# Large trades and a tight drawdown limit, so a 6% fall engages the kill switch with a position open.
PARAMS = replace(PAPER, limits=replace(LIMITS, max_trade_usd=5_000, max_drawdown_pct=2, cooldown_minutes=0,
                                       daily_loss_limit_pct=50))


def step(store, n, move_pct, price):
    """One workflow execution an hour apart: the venues' price stored, CheckRisk, Execute, release."""
    now = NOW + n * 3_600
    store_price(price, at=now - 10)
    execution_id = f"exec-{n}"
    risk = Risk(store, PARAMS).check("BTC-USD", prediction(move_pct, price), now, False, execution_id,
                                     wall_clock=now).result
    assert risk.approved, risk.reasons
    trade = ExecutionService(store, PARAMS).execute("BTC-USD", execution_id, risk, prediction(move_pct, price), now,
                                                    wall_clock=now)
    store.release_lease("BTC-USD", execution_id)
    return trade


def test_a_signal_sell_and_a_kill_switch_flatten_are_told_apart():
    with mock_aws():
        create_table(TRADES, "trades")
        create_table(TRADING_STATE, "state")
        create_table(PRICES, "prices")
        store = DynamoDBTradingStore("trades", "state")
        step(store, 1, 1.0, 20_000)  # BUY
        step(store, 2, -1.0, 19_950)  # SELL signal: sized by maxTradeAmount, it sells the whole position
        step(store, 3, 1.0, 20_000)  # BUY again
        step(store, 4, 0.0, 18_800)  # no signal, but the drawdown engages the kill switch: flatten
        records = store.recent_trades("BTC-USD", 50)
        wallet, _, _ = store.load_state("BTC-USD", 10_000)
    closed, still_open = positions(records)
    assert [p.closed_by for p in closed] == [SIGNAL, FLATTEN] and still_open is None
    assert closed[0].pnl_usd < 0 and closed[1].pnl_usd < closed[0].pnl_usd  # the fall to 18,800 costs more
    # The positions are the wallet's own accounting, fees included.
    assert sum(p.pnl_usd for p in closed) == pytest.approx(wallet.realised_pnl_usd)
