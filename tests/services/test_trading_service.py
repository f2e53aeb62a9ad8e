"""Risk and execution services on moto: intent-first audit, exactly-once, reconciliation."""

import boto3
import pytest
from moto import mock_aws

from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.contracts import PredictionResult
from btc_trader.domain.orders import client_order_id
from btc_trader.domain.risk import RiskLimits
from btc_trader.services.trading import (
    ExecutionReport,
    ExecutionService,
    NotApprovedError,
    RiskService,
    TradingParams,
)
from btc_trader.storage_schema import PRICES, TRADES, TRADING_STATE
from tests.aws_fakes import create_table

NOW = 1_678_536_000
LIMITS = RiskLimits(max_trade_usd=100, risk_threshold=0.7, buy_threshold_pct=0.5, sell_threshold_pct=-0.5,
                    fee_bps=10, max_position_pct=50, daily_loss_limit_pct=3, max_drawdown_pct=10,
                    cooldown_minutes=60, max_trades_per_day=10, max_price_age_s=600, max_divergence_bps=150)
LEASE_S = 546
PAPER = TradingParams(LIMITS, starting_cash=10_000, slippage_bps=5, mode="paper", symbols=("BTC-USD",),
                      lease_seconds=LEASE_S)


def prediction(move_pct=1.0, price=20_000.0):
    return PredictionResult(as_of="2023-03-11T12:00:00Z", current_price=price, price_age_s=10,
                            predicted_price=price * (1 + move_pct / 100), horizon_minutes=60,
                            direction="up" if move_pct > 0 else "down", confidence=0.9)


def store_price(price, at=NOW - 10, symbol="BTC-USD"):
    boto3.client("dynamodb").put_item(TableName="prices", Item={
        "symbol": {"S": symbol}, "timestamp": {"N": str(at)}, "price": {"N": repr(float(price))}})


@pytest.fixture
def store():
    with mock_aws():
        create_table(TRADES, "trades")
        create_table(TRADING_STATE, "state")
        create_table(PRICES, "prices")
        store_price(20_000)
        yield DynamoDBTradingStore("trades", "state")


class Risk(RiskService):
    """The risk service on moto's prices table, deciding and releasing like one workflow execution."""

    def __init__(self, store, params=PAPER):
        super().__init__(store, params, DynamoDBPriceHistory("prices"))

    def check(self, symbol, prediction, now, manual, execution_id="exec-1", wall_clock=None):
        return super().check(symbol, execution_id, prediction, now, NOW if wall_clock is None else wall_clock, manual)


def approve_and_execute(store, execution_id, pred, now=NOW, params=PAPER, live=None):
    """CheckRisk then Execute of one execution, then the state machine's release."""
    risk = Risk(store, params).check("BTC-USD", pred, now, False, execution_id).result
    trade = ExecutionService(store, params, live).execute("BTC-USD", execution_id, risk, pred, now, wall_clock=NOW)
    store.release_lease("BTC-USD", execution_id)
    return risk, trade


def test_paper_trade_round_trip_and_audit_trail(store):
    risk, trade = approve_and_execute(store, "exec-1", prediction())
    assert risk.approved and risk.action == "BUY"
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
    risk = Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-dup").result
    service = ExecutionService(store, PAPER)
    first = service.execute("BTC-USD", "exec-dup", risk, prediction(), NOW, wall_clock=NOW)
    second = service.execute("BTC-USD", "exec-dup", risk, prediction(), NOW, wall_clock=NOW)
    assert first == second
    assert boto3.client("dynamodb").scan(TableName="trades")["Count"] == 1
    assert store.load_state("BTC-USD", 10_000)[0].btc == pytest.approx(first.wallet.btc)


def test_unapproved_intents_are_refused(store):
    risk = Risk(store).check("BTC-USD", prediction(move_pct=0.1), NOW, False, "exec-h").result
    with pytest.raises(NotApprovedError, match="HOLD was not approved: hold: predicted move"):
        ExecutionService(store, PAPER).execute("BTC-USD", "exec-h", risk, prediction(), NOW, wall_clock=NOW)


def test_a_crash_after_pending_is_reconciled_once(store):
    risk = Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-crash").result
    trade_id = client_order_id("exec-crash")
    store.record_pending({"trade_id": trade_id, "client_order_id": trade_id, "execution_id": "exec-crash",
                          "symbol": "BTC-USD", "side": "BUY", "mode": "paper", "quantity_btc": 0.005,
                          "reference_price": 20_000.0, "created_at": NOW})
    result = ExecutionService(store, PAPER).execute("BTC-USD", "exec-crash", risk, prediction(), NOW, wall_clock=NOW)
    assert result.status == "FILLED" and result.filled_qty == pytest.approx(0.005)
    assert store.load_state("BTC-USD", 10_000)[0].btc == pytest.approx(0.005)


class FakeExchange:
    def __init__(self, place=None, found=None, raises=None):
        self.placed, self._place, self._found, self._raises = [], place, found, raises

    def place_market_order(self, symbol, side, quantity, coid, reference_price=None):
        self.placed.append(coid)
        if self._raises:
            error, self._raises = self._raises, None
            raise error
        return self._place

    def find_order(self, symbol, coid):
        return self._found


LIVE = TradingParams(LIMITS, starting_cash=10_000, slippage_bps=5, mode="live", symbols=("BTC-USD",),
                     lease_seconds=LEASE_S)


def test_live_timeout_then_found_does_not_resend(store):
    risk = Risk(store, LIVE).check("BTC-USD", prediction(), NOW, False, "exec-t1").result
    exchange = FakeExchange(found=ExecutionReport("FILLED", 0.005, 20_001.0, 0.1, "8389765"),
                            raises=TimeoutError("read timed out"))
    result = ExecutionService(store, LIVE, exchange).execute("BTC-USD", "exec-t1", risk, prediction(), NOW,
                                                              wall_clock=NOW)
    assert result.status == "FILLED" and result.avg_price == 20_001.0
    assert len(exchange.placed) == 1, "found by client order id: never sent twice"


def test_live_timeout_then_absent_resends_with_the_same_id(store):
    risk = Risk(store, LIVE).check("BTC-USD", prediction(), NOW, False, "exec-t2").result
    exchange = FakeExchange(place=ExecutionReport("FILLED", 0.005, 20_002.0, 0.1, "1"), found=None,
                            raises=ConnectionError("reset"))
    result = ExecutionService(store, LIVE, exchange).execute("BTC-USD", "exec-t2", risk, prediction(), NOW,
                                                              wall_clock=NOW)
    assert result.status == "FILLED"
    assert exchange.placed == [client_order_id("exec-t2")] * 2


def test_live_rejection_keeps_the_wallet(store):
    risk = Risk(store, LIVE).check("BTC-USD", prediction(), NOW, False, "exec-r").result
    exchange = FakeExchange(place=ExecutionReport("REJECTED", reason="insufficient funds: Account has insufficient balance"))
    result = ExecutionService(store, LIVE, exchange).execute("BTC-USD", "exec-r", risk, prediction(), NOW,
                                                              wall_clock=NOW)
    assert result.status == "REJECTED" and result.wallet.usd == 10_000
    assert "insufficient" in store.get_trade(result.trade_id)["reason"]


def test_drawdown_kill_switch_persists(store):
    service = Risk(store)
    approve_and_execute(store, "e1", prediction())
    wallet, state, version = store.load_state("BTC-USD", 10_000)
    from dataclasses import replace

    store.save_state("BTC-USD", replace(wallet, usd=8_000), state, version)  # a crash in equity
    store_price(19_000, NOW + 50)
    crashed = service.check("BTC-USD", prediction(price=19_000), NOW + 60, False, "e2").decision
    held = store.load_state("BTC-USD", 10_000)[0].btc
    # The one order allowed with the kill switch engaged closes the whole position.
    assert crashed.approved and crashed.intent.action == "SELL" and crashed.intent.quantity_btc == held
    assert crashed.reasons[0].startswith("flatten:") and any("kill_switch: drawdown" in r for r in crashed.reasons)
    assert store.load_state("BTC-USD", 10_000)[1].kill_switch
    risk = service.check("BTC-USD", prediction(price=19_000), NOW + 60, False, "e2").result
    ExecutionService(store, PAPER).execute("BTC-USD", "e2", risk, prediction(price=19_000), NOW + 60, wall_clock=NOW)
    store.release_lease("BTC-USD", "e2")
    assert store.load_state("BTC-USD", 10_000)[0].btc == 0
    # Then nothing trades until an operator resets it, whatever the prediction says.
    store_price(25_000, NOW + 110)
    after = service.check("BTC-USD", prediction(price=25_000), NOW + 120, False, "e3").decision
    assert not after.approved and any(r.startswith("kill_switch: kill switch engaged") for r in after.reasons)


def test_manual_kill_switch_never_flattens(store):
    approve_and_execute(store, "e1", prediction())
    store_price(19_000, NOW + 50)
    stopped = Risk(store).check("BTC-USD", prediction(price=19_000), NOW + 60, True, "e2").decision
    assert not stopped.approved and any(r.startswith("manual_kill_switch:") for r in stopped.reasons)
    assert store.load_state("BTC-USD", 10_000)[0].btc > 0


# --- lease and re-validation (issue #15) --------------------------------------------------------


def trades_written():
    return boto3.client("dynamodb").scan(TableName="trades")["Count"]


def test_a_second_decision_for_a_held_symbol_is_refused_and_touches_nothing(store):
    first = Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-a").result
    state_before = store.load_decision("BTC-USD")
    second = Risk(store).check("BTC-USD", prediction(), NOW + 5, False, "exec-b", wall_clock=NOW + 5).result
    assert first.approved and first.lease_expires_at == NOW + LEASE_S and first.state_version == 1
    assert not second.approved and second.action == "HOLD"
    assert second.reasons == [f"lease: BTC-USD is held by execution exec-a until epoch {NOW + LEASE_S}; "
                              "this run neither decides nor trades"]
    assert second.client_order_id == client_order_id("exec-b")  # alerts can name it
    assert store.load_decision("BTC-USD") == state_before


def test_the_holder_may_decide_again_and_an_expired_lease_is_taken_over(store):
    Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-a")
    assert Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-a", wall_clock=NOW + 1).result.approved
    late = Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-b", wall_clock=NOW + 1 + LEASE_S).result
    assert late.approved and store.lease("BTC-USD").holder == "exec-b"


def refused(store, execution_id, risk, pred=None, wall_clock=NOW, match=""):
    with pytest.raises(NotApprovedError, match=match):
        ExecutionService(store, PAPER).execute("BTC-USD", execution_id, risk, pred or prediction(), NOW,
                                               wall_clock=wall_clock)
    assert trades_written() == 0, "refused before anything is written"


def test_executor_accepts_only_the_stored_decision_of_its_execution(store):
    risk = Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-a").result
    refused(store, "exec-a", risk.model_copy(update={"quantity_btc": 5.0}),
            match="quantity_btc 5.0 differs from the stored decision's 0.005")
    refused(store, "exec-a", risk.model_copy(update={"reference_price": 1e-6}), match="reference_price")
    refused(store, "exec-other", risk, match="no stored approval of execution exec-other .*exec-a's")
    refused(store, "exec-a", risk, wall_clock=NOW + LEASE_S, match="the lease of BTC-USD expired")
    refusal = PredictionResult(status="no_model", reason="every model failed", as_of="2023-03-11T12:00:00Z",
                               horizon_minutes=60)
    refused(store, "exec-a", risk, pred=refusal, match=r"the prediction is a refusal \(no_model: every model failed\)")


def test_executor_refuses_when_the_state_moved_since_the_decision(store):
    risk = Risk(store).check("BTC-USD", prediction(), NOW, False, "exec-a").result
    wallet, state, version = store.load_state("BTC-USD", 10_000)
    store.save_state("BTC-USD", wallet, state, version)  # e.g. an operator's reset in between
    refused(store, "exec-a", risk, match="changed since the decision \\(version 1, now 2\\)")


def test_two_interleaved_runs_trade_once_within_the_limits(store):
    """The reproduction: two overlapping runs both passed on one snapshot; now one trades."""
    one_trade = TradingParams(LIMITS.__class__(**{**LIMITS.__dict__, "max_trades_per_day": 1}), 10_000, 5, "paper",
                              ("BTC-USD",), LEASE_S)
    a = Risk(store, one_trade).check("BTC-USD", prediction(), NOW, False, "exec-a").result
    b = Risk(store, one_trade).check("BTC-USD", prediction(), NOW, False, "exec-b").result
    assert a.approved and not b.approved
    ExecutionService(store, one_trade).execute("BTC-USD", "exec-a", a, prediction(), NOW, wall_clock=NOW)
    store.release_lease("BTC-USD", "exec-a")
    c = Risk(store, one_trade).check("BTC-USD", prediction(), NOW + 60, False, "exec-c", wall_clock=NOW + 60).result
    assert not c.approved and any(r.startswith("max_trades: 1 trades today") for r in c.reasons)
    assert trades_written() == 1


def test_settle_leaves_out_missing_fields_and_refuses_non_finite_ones(store):
    risk = Risk(store, LIVE).check("BTC-USD", prediction(), NOW, False, "exec-s").result
    exchange = FakeExchange(place=ExecutionReport("FILLED", 0.005, 20_001.0, 0.1, exchange_order_id=None))
    result = ExecutionService(store, LIVE, exchange).execute("BTC-USD", "exec-s", risk, prediction(), NOW,
                                                             wall_clock=NOW)
    record = store.get_trade(result.trade_id)
    assert result.status == "FILLED" and record["status"] == "FILLED" and "exchange_order_id" not in record
    from btc_trader.adapters.dynamodb_trading import update_clause

    with pytest.raises(ValueError, match="trade field avg_price must be a finite number, got nan"):
        update_clause({"avg_price": float("nan")})
