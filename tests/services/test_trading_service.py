"""Risk and execution services on moto: intent-first audit, exactly-once, reconciliation."""

import boto3
import pytest
from moto import mock_aws

from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.contracts import PredictionResult
from btc_trader.domain.orders import client_order_id
from btc_trader.domain.risk import RiskLimits
from btc_trader.services.trading import (
    ExecutionService,
    NotApprovedError,
    RiskService,
    TradingParams,
)
from btc_trader.storage_schema import TRADES, TRADING_STATE
from tests.aws_fakes import create_table

NOW = 1_678_536_000
LIMITS = RiskLimits(max_trade_usd=100, risk_threshold=0.7, buy_threshold_pct=0.5, sell_threshold_pct=-0.5,
                    fee_bps=10, max_position_pct=50, daily_loss_limit_pct=3, max_drawdown_pct=10,
                    cooldown_minutes=60, max_trades_per_day=10, max_price_age_s=600, max_divergence_bps=150)
PAPER = TradingParams(LIMITS, starting_cash=10_000, slippage_bps=5, mode="paper")


def prediction(move_pct=1.0, price=20_000.0):
    return PredictionResult(as_of="2023-03-11T12:00:00Z", current_price=price, price_age_s=10,
                            predicted_price=price * (1 + move_pct / 100), horizon_minutes=60, direction="up",
                            confidence=0.9)


@pytest.fixture
def store():
    with mock_aws():
        create_table(TRADES, "trades")
        create_table(TRADING_STATE, "state")
        yield DynamoDBTradingStore("trades", "state")


def test_paper_trade_round_trip_and_audit_trail(store):
    risk = RiskService(store, PAPER).check("BTC-USD", prediction(), NOW, False).to_result()
    assert risk.approved and risk.action == "BUY"
    trade = ExecutionService(store, PAPER).execute("BTC-USD", "exec-1", risk, prediction(), NOW)
    assert trade.status == "FILLED" and trade.mode == "paper"
    assert trade.client_order_id == client_order_id("exec-1")
    assert trade.avg_price == pytest.approx(20_010)
    assert trade.wallet.usd == pytest.approx(10_000 - 100 * 20_010 / 20_000 - trade.fee_usd, rel=1e-9)
    assert trade.wallet.equity_usd == pytest.approx(trade.wallet.usd + trade.wallet.btc * 20_010)
    record = store.get_trade(trade.trade_id)
    assert record["status"] == "FILLED" and record["execution_id"] == "exec-1"
    wallet, state, version = store.load_state("BTC-USD", 10_000)
    assert wallet.btc == pytest.approx(trade.wallet.btc) and state.trades_today == 1 and version >= 2


def test_duplicate_delivery_places_one_order(store):
    risk = RiskService(store, PAPER).check("BTC-USD", prediction(), NOW, False).to_result()
    service = ExecutionService(store, PAPER)
    first = service.execute("BTC-USD", "exec-dup", risk, prediction(), NOW)
    second = service.execute("BTC-USD", "exec-dup", risk, prediction(), NOW)
    assert first == second
    assert boto3.client("dynamodb").scan(TableName="trades")["Count"] == 1
    assert store.load_state("BTC-USD", 10_000)[0].btc == pytest.approx(first.wallet.btc)


def test_unapproved_intents_are_refused(store):
    risk = RiskService(store, PAPER).check("BTC-USD", prediction(move_pct=0.1), NOW, False).to_result()
    with pytest.raises(NotApprovedError, match="HOLD was not approved: hold: predicted move"):
        ExecutionService(store, PAPER).execute("BTC-USD", "exec-h", risk, prediction(), NOW)


def test_a_crash_after_pending_is_reconciled_once(store):
    risk = RiskService(store, PAPER).check("BTC-USD", prediction(), NOW, False).to_result()
    trade_id = client_order_id("exec-crash")
    store.record_pending({"trade_id": trade_id, "client_order_id": trade_id, "execution_id": "exec-crash",
                          "symbol": "BTC-USD", "side": "BUY", "mode": "paper", "quantity_btc": 0.005,
                          "reference_price": 20_000.0, "created_at": NOW})
    result = ExecutionService(store, PAPER).execute("BTC-USD", "exec-crash", risk, prediction(), NOW)
    assert result.status == "FILLED" and result.filled_qty == pytest.approx(0.005)
    assert store.load_state("BTC-USD", 10_000)[0].btc == pytest.approx(0.005)


# Live execution (the exchange is the truth) is tested against the simulated Binance account in
# tests/services/test_live_execution.py.


def test_drawdown_kill_switch_persists(store):
    service = RiskService(store, PAPER)
    ExecutionService(store, PAPER).execute("BTC-USD", "e1", service.check("BTC-USD", prediction(), NOW, False).to_result(),
                                           prediction(), NOW)
    wallet, state, version = store.load_state("BTC-USD", 10_000)
    from dataclasses import replace

    store.save_state("BTC-USD", replace(wallet, usd=8_000), state, version)  # a crash in equity
    crashed = service.check("BTC-USD", prediction(price=19_000), NOW + 60, False)
    held = store.load_state("BTC-USD", 10_000)[0].btc
    # The one order allowed with the kill switch engaged closes the whole position.
    assert crashed.approved and crashed.intent.action == "SELL" and crashed.intent.quantity_btc == held
    assert crashed.reasons[0].startswith("flatten:") and any("kill_switch: drawdown" in r for r in crashed.reasons)
    assert store.load_state("BTC-USD", 10_000)[1].kill_switch
    ExecutionService(store, PAPER).execute("BTC-USD", "e2", crashed.to_result(), prediction(price=19_000), NOW + 60)
    assert store.load_state("BTC-USD", 10_000)[0].btc == 0
    # Then nothing trades until an operator resets it, whatever the prediction says.
    after = service.check("BTC-USD", prediction(price=25_000), NOW + 120, False)
    assert not after.approved and any(r.startswith("kill_switch: kill switch engaged") for r in after.reasons)


def test_manual_kill_switch_never_flattens(store):
    service = RiskService(store, PAPER)
    ExecutionService(store, PAPER).execute("BTC-USD", "e1", service.check("BTC-USD", prediction(), NOW, False).to_result(),
                                           prediction(), NOW)
    stopped = service.check("BTC-USD", prediction(price=19_000), NOW + 60, True)
    assert not stopped.approved and any(r.startswith("manual_kill_switch:") for r in stopped.reasons)
    assert store.load_state("BTC-USD", 10_000)[0].btc > 0
