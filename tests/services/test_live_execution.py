"""Live execution scenarios: the simulated Binance account behind ccxt's real Binance code, the
trading store on moto. One test (or more) per bullet of issue #14's "Why" and "What to build"."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import boto3
import pytest
import responses
from moto import mock_aws

from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.adapters.exchange.ccxt_executor import CcxtExecutor
from btc_trader.contracts import PredictionResult, RiskResult
from btc_trader.domain.orders import client_order_id
from btc_trader.domain.risk import RiskLimits
from btc_trader.services.reconciliation import NEVER_PLACED_AFTER_S, ReconcileService
from btc_trader.services.trading import POLL_ATTEMPTS, ExecutionService, RiskService, TradingParams
from btc_trader.storage_schema import PRICES, TRADES, TRADING_STATE
from tests.aws_fakes import create_table
from tests.exchange_sim import BinanceSim, OrderFault

NOW = 1_678_536_000
PRICE = 20_000.0
LIMITS = RiskLimits(max_trade_usd=100, risk_threshold=0.7, buy_threshold_pct=0.5, sell_threshold_pct=-0.5,
                    fee_bps=10, max_position_pct=50, daily_loss_limit_pct=3, max_drawdown_pct=10,
                    cooldown_minutes=60, max_trades_per_day=10, max_price_age_s=600, max_divergence_bps=150)
LIVE = TradingParams(LIMITS, starting_cash=10_000, slippage_bps=5, mode="live", symbols=("BTC-USD",),
                     lease_seconds=600, max_slippage_bps=30)
PAPER = TradingParams(LIMITS, starting_cash=10_000, slippage_bps=5, mode="paper", symbols=("BTC-USD", "BTC-PAPER"),
                      lease_seconds=600, max_slippage_bps=30)


def prediction(price: float = PRICE) -> PredictionResult:
    return PredictionResult(as_of="2023-03-11T12:00:00Z", current_price=price, price_age_s=10,
                            predicted_price=price * 1.01, horizon_minutes=60, direction="up", confidence=0.9)


def intent(action: str, quantity: float, notional: float | None = None) -> RiskResult:
    """An approved intent; its notional leaves room for the limit's slippage and the fee unless given."""
    return RiskResult(approved=True, action=action, quantity_btc=quantity,
                      notional_usd=notional if notional is not None else quantity * PRICE * 1.01, reasons=[],
                      risk_score=0.1)


def book(ask: float = PRICE, bid: float = PRICE - 10, depth: str = "10") -> dict:
    return {"asks": [(D(str(ask)), D(depth))], "bids": [(D(str(bid)), D(depth))]}


def approve(store, symbol: str, execution_id: str, risk: RiskResult, price: float, at: int) -> RiskResult:
    """What CheckRisk leaves for Execute: the stored decision and the lease (the executor verifies
    both before writing anything); the intent's size is the test's own."""
    wallet, state, version = store.load_state(symbol, 10_000)
    decision = {"execution_id": execution_id, "approved": True, "action": risk.action,
                "quantity_btc": risk.quantity_btc, "notional_usd": risk.notional_usd, "reference_price": price,
                "decided_at": at}
    version = store.save_state(symbol, wallet, state, version, decision)
    assert store.acquire_lease(symbol, execution_id, at, 600).acquired
    return risk.model_copy(update={"reference_price": price, "state_version": version})


def execute_once(service: ExecutionService, symbol: str, execution_id: str, risk: RiskResult, price: float,
                 at: int):
    """One Execute of one workflow execution (approved first unless it already has its trade)."""
    store = service.store
    if store.get_trade(client_order_id(execution_id)) is None:
        risk = approve(store, symbol, execution_id, risk, price, at)
    else:
        risk = risk.model_copy(update={"reference_price": price})
    try:
        return service.execute(symbol, execution_id, risk, prediction(price), at, wall_clock=at)
    finally:
        store.release_lease(symbol, execution_id)


class Alerts:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


class Rig:
    """One simulated account, the stack's trading store and the services wired to them."""

    def __init__(self, sim: BinanceSim, store: DynamoDBTradingStore, params: TradingParams = LIVE):
        self.sim, self.store = sim, store
        self.sleeps: list[float] = []
        self.executor = CcxtExecutor("binance", "api-key", "api-secret", sandbox=False)
        self.executor.exchange.enableRateLimit = False  # ccxt's throttle sleeps; the simulator needs none
        self.service = ExecutionService(store, params, self.executor, sleep=self.sleeps.append)
        self.alerts = Alerts()
        self.reconciler = ReconcileService(self.service, self.alerts)

    def execute(self, execution_id: str, risk: RiskResult, at: int = NOW, price: float = PRICE):
        return execute_once(self.service, "BTC-USD", execution_id, risk, price, at)

    def ledger(self):
        return self.store.load_state("BTC-USD", 10_000)[0]

    def exchange(self, asset: str) -> float:
        return float(self.sim.balances.get(asset, D(0)))


@pytest.fixture
def store():
    with mock_aws():
        create_table(TRADES, "trades")
        create_table(TRADING_STATE, "state")
        yield DynamoDBTradingStore("trades", "state")


@pytest.fixture
def rig(store):
    sim = BinanceSim(balances={"USDT": D("1000"), "BTC": D("0")}, **book())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        yield Rig(sim, store)


# --- Why: fees in base -----------------------------------------------------------------------


def test_fee_in_base_is_booked_in_base_and_the_full_exit_fills(rig):
    bought = rig.execute("e-buy", intent("BUY", 0.004))
    assert bought.status == "FILLED" and bought.filled_qty == pytest.approx(0.004)
    # Binance took 0.1 % of the BTC received: the ledger holds exactly what the account holds.
    assert rig.exchange("BTC") == pytest.approx(0.003996)
    assert rig.ledger().btc == pytest.approx(rig.exchange("BTC"), abs=1e-12)
    assert rig.ledger().usd == pytest.approx(rig.exchange("USDT"), abs=1e-9)
    assert bought.fee_usd == pytest.approx(0.000004 * PRICE)
    # The kill switch's flatten sells the whole ledger position: it is what the account holds.
    flatten = rig.execute("e-flatten", intent("SELL", rig.ledger().btc))
    assert flatten.status in ("FILLED", "PARTIAL") and flatten.filled_qty > 0
    assert rig.exchange("BTC") < 1e-5  # only sub-step dust is left
    assert rig.ledger().btc == pytest.approx(rig.exchange("BTC"), abs=1e-12)
    assert rig.ledger().usd == pytest.approx(rig.exchange("USDT"), abs=1e-9)


# --- Why: blind re-send ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["-1007", "-1006", "5xx", "timeout"])
def test_unknown_status_order_that_appears_later_is_found_never_resent(rig, kind):
    rig.sim.faults.append(OrderFault(kind, placed=True, visible_after=2))
    trade = rig.execute("e-unknown", intent("BUY", 0.004))
    assert len(rig.sim.posted_orders()) == 1, "never a second order"
    assert trade.status == "FILLED" and trade.filled_qty == pytest.approx(0.004)
    assert trade.fee_usd == pytest.approx(0.000004 * PRICE), "the fee comes from the account's trades, not 0"
    assert rig.sleeps, "it waited between lookups"
    assert rig.ledger().btc == pytest.approx(rig.exchange("BTC"), abs=1e-12)


def test_unknown_status_not_visible_within_the_poll_stays_unknown_and_blocks(rig):
    rig.sim.faults.append(OrderFault("-1007", placed=True, visible_after=10**6))
    first = rig.execute("e-lost", intent("BUY", 0.004))
    assert first.status == "UNKNOWN" and "tracked by the reconciler" in first.reason
    assert len(rig.sleeps) == POLL_ATTEMPTS - 1, "a bounded wait-and-poll"
    # A retried execution looks again and never re-sends.
    again = rig.execute("e-lost", intent("BUY", 0.004))
    assert again.status == "UNKNOWN"
    # Another execution for the symbol is refused for its own reason, without an order.
    other = rig.execute("e-next", intent("BUY", 0.001), at=NOW + 900)
    assert other.status == "REJECTED" and other.reason.startswith("unresolved_order:")
    assert len(rig.sim.posted_orders()) == 1


def test_reused_client_id_after_fill_would_be_accepted_so_it_is_never_resent(rig):
    """Binance accepts a reused newClientOrderId once the first order has filled: a re-send would
    be a second order. The retried execution finds the first one and books it once."""
    rig.sim.faults.append(OrderFault("timeout", placed=True, visible_after=10**6))
    assert rig.execute("e-reuse", intent("BUY", 0.004)).status == "UNKNOWN"
    rig.sim.orders[-1].hidden_queries = 0  # now the order shows
    retried = rig.execute("e-reuse", intent("BUY", 0.004))
    assert retried.status == "FILLED" and len(rig.sim.posted_orders()) == 1
    assert rig.store.load_state("BTC-USD", 10_000)[1].trades_today == 1


def test_duplicate_order_sent_means_our_order_is_open_not_rejected(rig):
    from btc_trader.domain.orders import OrderFateUnknown

    rig.sim.rest_next = 1
    coid = client_order_id("e-dup")
    first = rig.executor.place_limit_ioc("BTC-USD", "BUY", 0.001, 19_000, coid)
    assert first.status == "OPEN"
    with pytest.raises(OrderFateUnknown, match="Duplicate order sent"):
        rig.executor.place_limit_ioc("BTC-USD", "BUY", 0.001, 19_000, coid)
    rig.sim.fill_resting(coid)
    # Once the first is filled the exchange takes the same id again: the id alone proves nothing.
    assert rig.executor.place_limit_ioc("BTC-USD", "BUY", 0.001, 20_060, coid).status == "FILLED"


# --- Why: accepted but unfilled ---------------------------------------------------------------


def test_accepted_but_unfilled_is_tracked_until_terminal_and_then_counted(rig):
    rig.sim.rest_next = 1  # the exchange accepts the order and leaves it open
    trade = rig.execute("e-open", intent("BUY", 0.004))
    assert trade.status == "OPEN"
    blocked = rig.execute("e-after-open", intent("BUY", 0.001), at=NOW + 900)
    assert blocked.status == "REJECTED" and blocked.reason.startswith("unresolved_order:")
    assert rig.store.load_state("BTC-USD", 10_000)[1].trades_today == 0
    rig.sim.fill_resting(trade.client_order_id)
    (report,) = rig.reconciler.run(("BTC-USD",), NOW + 1_000)
    assert report.resolved == (trade.trade_id,) and report.unresolved == () and report.blocked_reason is None
    assert rig.store.get_trade(trade.trade_id)["status"] == "FILLED"
    assert rig.store.load_state("BTC-USD", 10_000)[1].trades_today == 1
    assert rig.ledger().btc == pytest.approx(rig.exchange("BTC"), abs=1e-12)


# --- Why: left unreconciled -------------------------------------------------------------------


def test_the_reconciler_books_an_order_that_appears_later_with_its_fee(rig):
    rig.sim.faults.append(OrderFault("5xx", placed=True, visible_after=10**6))
    lost = rig.execute("e-late", intent("BUY", 0.004))
    assert lost.status == "UNKNOWN"
    (report,) = rig.reconciler.run(("BTC-USD",), NOW + 60)
    assert report.unresolved == (lost.trade_id,)
    rig.sim.orders[-1].hidden_queries = 0
    (report,) = rig.reconciler.run(("BTC-USD",), NOW + 120)
    assert report.resolved == (lost.trade_id,) and report.check.agrees
    stored = rig.store.get_trade(lost.trade_id)
    assert stored["status"] == "FILLED" and float(stored["fee_usd"]) == pytest.approx(0.000004 * PRICE)
    assert stored["fees"] == [{"amount": pytest.approx(0.000004), "currency": "BTC"}]
    assert len(rig.sim.posted_orders()) == 1


def test_an_order_that_never_reached_the_exchange_is_closed_after_the_grace_window(rig):
    rig.sim.faults.append(OrderFault("-1007", placed=False))
    lost = rig.execute("e-never", intent("BUY", 0.004))
    assert lost.status == "UNKNOWN"
    (early,) = rig.reconciler.run(("BTC-USD",), NOW + 60)
    assert early.unresolved == (lost.trade_id,), "too early to say it was never placed"
    (late,) = rig.reconciler.run(("BTC-USD",), NOW + NEVER_PLACED_AFTER_S)
    assert late.unresolved == () and late.blocked_reason is None
    stored = rig.store.get_trade(lost.trade_id)
    assert stored["status"] == "REJECTED" and stored["reason"].startswith("never placed")
    assert rig.execute("e-fresh", intent("BUY", 0.004), at=NOW + 1_000).status == "FILLED"
    assert len(rig.sim.posted_orders()) == 2


def test_a_crash_after_pending_is_looked_up_never_resent(rig):
    """The executor died after writing PENDING (and maybe after sending): the retry only looks."""
    trade_id = client_order_id("e-crash")
    rig.store.record_pending({"trade_id": trade_id, "client_order_id": trade_id, "execution_id": "e-crash",
                              "symbol": "BTC-USD", "side": "BUY", "mode": "live", "quantity_btc": 0.004,
                              "notional_usd": 81.0, "reference_price": PRICE, "created_at": NOW})
    result = rig.execute("e-crash", intent("BUY", 0.004))
    assert result.status == "UNKNOWN" and rig.sim.posted_orders() == []
    assert rig.store.load_guard("BTC-USD")[0].unresolved == (trade_id,)


def test_legacy_failed_trades_are_looked_up_not_resent(rig):
    trade_id = client_order_id("e-legacy")
    rig.store.record_pending({"trade_id": trade_id, "client_order_id": trade_id, "execution_id": "e-legacy",
                              "symbol": "BTC-USD", "side": "BUY", "mode": "live", "quantity_btc": 0.004,
                              "notional_usd": 80.0, "reference_price": PRICE, "created_at": NOW})
    rig.store.mark(trade_id, "PENDING", "FAILED", {"reason": "ConnectionError: reset"})
    result = rig.execute("e-legacy", intent("BUY", 0.004))
    assert result.status == "UNKNOWN" and rig.sim.posted_orders() == []


# --- Why: unprotected orders / What: protected orders -----------------------------------------


def test_orders_are_limit_ioc_within_max_slippage_and_the_worst_cost_fits_the_limit(rig):
    trade = rig.execute("e-limit", intent("BUY", 0.005, notional=100))
    (sent,) = rig.sim.posted_orders()
    assert (sent["type"], sent["timeInForce"]) == ("LIMIT", "IOC")
    limit = float(sent["price"])
    assert limit == pytest.approx(PRICE * 1.003)  # best ask + maxSlippageBps 30
    quantity = float(sent["quantity"])
    assert quantity * limit * (1 + LIMITS.fee_bps / 10_000) <= 100, "worst cost within the approved notional"
    assert trade.status == "FILLED" and trade.avg_price == PRICE  # filled at the ask, better than the limit


def test_thin_book_fills_part_and_the_rest_expires(store):
    sim = BinanceSim(balances={"USDT": D("1000")}, asks=[(D("20000"), D("0.002")), (D("20100"), D("1"))],
                     bids=[(D("19990"), D("1"))])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        rig = Rig(sim, store)
        trade = rig.execute("e-thin", intent("BUY", 0.004))
    assert trade.status == "PARTIAL" and trade.filled_qty == pytest.approx(0.002)
    assert "the rest expired" in trade.reason
    assert rig.store.load_state("BTC-USD", 10_000)[1].trades_today == 1
    assert rig.ledger().btc == pytest.approx(float(sim.balances["BTC"]), abs=1e-12)


def test_an_ioc_that_expires_unfilled_is_recorded_and_counts_toward_no_limit(rig):
    # The book moved up between the quote and the order: nothing at or below the limit.
    rig.sim.stale_quote = (D("19990"), D("20000"))
    rig.sim.asks = [(D("20100"), D("5"))]
    trade = rig.execute("e-expired", intent("BUY", 0.004))
    assert trade.status == "EXPIRED" and "IOC expired unfilled" in trade.reason
    assert rig.store.get_trade(trade.trade_id)["status"] == "EXPIRED"
    assert rig.store.load_state("BTC-USD", 10_000)[1].trades_today == 0
    assert rig.ledger().usd == pytest.approx(1000)
    # Terminal: the next run may trade.
    rig.sim.stale_quote = None
    assert rig.execute("e-after-expiry", intent("BUY", 0.004), at=NOW + 900).status == "FILLED"


def test_a_quote_far_from_the_stored_median_sends_nothing(rig):
    rig.sim.asks, rig.sim.bids = [(D("21000"), D("5"))], [(D("20990"), D("5"))]
    trade = rig.execute("e-diverge", intent("BUY", 0.004))
    assert trade.status == "REJECTED" and trade.reason.startswith("divergence:")
    assert rig.sim.posted_orders() == []


def test_insufficient_balance_and_filters_are_refusals_with_the_exchange_reason(rig):
    report = rig.executor.place_limit_ioc("BTC-USD", "BUY", 0.1, 20_060, "btct-big")
    assert report.status == "REJECTED" and "insufficient balance" in report.reason
    import ccxt

    raw = rig.executor.exchange
    with pytest.raises(ccxt.ExchangeError, match="LOT_SIZE"):
        raw.create_order("BTC/USDT", "limit", "buy", 9_001, 20_000, {"timeInForce": "IOC"})
    with pytest.raises(ccxt.ExchangeError, match="PRICE_FILTER"):
        raw.create_order("BTC/USDT", "limit", "buy", 0.001, 2_000_000, {"timeInForce": "IOC"})
    with pytest.raises(ccxt.ExchangeError, match="NOTIONAL"):
        raw.create_order("BTC/USDT", "limit", "buy", 0.0002, 20_000, {"timeInForce": "IOC"})
    assert rig.executor.place_limit_ioc("BTC-USD", "BUY", 0.0002, 20_000, "btct-small").status == "REJECTED"


# --- What: exchange truth, reconciliation, operator adoption -----------------------------------


def test_a_difference_beyond_dust_blocks_the_symbol_alerts_and_waits_for_the_operator(rig):
    assert rig.execute("e-1", intent("BUY", 0.004)).status == "FILLED"
    rig.sim.balances["BTC"] -= D("0.002")  # someone withdrew BTC the stack bought
    blocked = rig.execute("e-2", intent("BUY", 0.001), at=NOW + 900)
    assert blocked.status == "REJECTED" and blocked.reason.startswith("reconciliation: ledger and exchange differ")
    assert len(rig.sim.posted_orders()) == 1
    (report,) = rig.reconciler.run(("BTC-USD",), NOW + 960)
    assert report.blocked_reason and not report.check.agrees
    # The executor blocked it first; a fresh difference found by the reconciler alerts.
    rig.sim.balances["USDT"] -= D("100")
    store_guard, version = rig.store.load_guard("BTC-USD")
    from dataclasses import replace

    rig.store.save_guard("BTC-USD", replace(store_guard, blocked_reason=None), version)
    (report,) = rig.reconciler.run(("BTC-USD",), NOW + 1_000)
    assert report.newly_blocked and len(rig.alerts.sent) == 1 and "BEYOND DUST" in rig.alerts.sent[0][1]
    # The operator adopts the exchange's side: the ledger equals the account and trading resumes.
    adopted = rig.reconciler.adopt_exchange("BTC-USD", NOW + 1_100)
    assert adopted.blocked_reason is None and adopted.check.agrees
    assert rig.ledger().btc == pytest.approx(rig.exchange("BTC"))
    assert rig.execute("e-3", intent("BUY", 0.001), at=NOW + 1_200).status == "FILLED"


def test_a_dust_difference_does_not_block(rig):
    assert rig.execute("e-1", intent("BUY", 0.004)).status == "FILLED"
    rig.sim.balances["BTC"] += D("0.000001")  # below LOT_SIZE minQty: nobody can trade it
    rig.sim.balances["USDT"] += D("1.5")  # below the NOTIONAL minimum
    (report,) = rig.reconciler.run(("BTC-USD",), NOW + 60)
    assert report.check.agrees and report.blocked_reason is None
    assert rig.execute("e-2", intent("BUY", 0.001), at=NOW + 900).status == "FILLED"


def test_the_first_live_run_adopts_the_account_including_btc_the_stack_did_not_buy(store):
    sim = BinanceSim(balances={"USDT": D("500"), "BTC": D("0.01")}, **book())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        rig = Rig(sim, store)
        trade = rig.execute("e-first", intent("SELL", 0.004))
    assert trade.status == "FILLED"
    ledger = rig.ledger()
    assert ledger.btc == pytest.approx(0.006) and ledger.usd == pytest.approx(float(sim.balances["USDT"]))
    assert ledger.realised_pnl_usd == pytest.approx((PRICE - 10) * 0.004 * 0.999 - PRICE * 0.004, abs=0.01)


# --- What: paper / live parity ----------------------------------------------------------------


def _round_trip(rig: Rig) -> None:
    assert rig.execute("p-buy", intent("BUY", 0.004, notional=200)).status == "FILLED"
    rig.sim.asks, rig.sim.bids = [(D("21010.5"), D("5"))], [(D("20989.5"), D("5"))]
    assert rig.execute("p-sell", intent("SELL", 0.004), at=NOW + 3_600, price=21_000).status == "FILLED"


def test_paper_and_live_ledgers_agree_to_the_cent_with_fees_in_quote(store):
    # The simulator fills at paper's convention (reference price moved by slippageBps 5) and
    # charges feeBps 10 in the quote asset.
    sim = BinanceSim(balances={"USDT": D("10000")}, asks=[(D("20010"), D("5"))], bids=[(D("19990"), D("5"))],
                     fee_mode="quote", fee_rate=D("0.001"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        live = Rig(sim, store)
        _round_trip(live)
    paper = ExecutionService(store, PAPER)
    execute_once(paper, "BTC-PAPER", "paper-buy", intent("BUY", 0.004, notional=200), PRICE, NOW)
    execute_once(paper, "BTC-PAPER", "paper-sell", intent("SELL", 0.004), 21_000, NOW + 3_600)
    paper_ledger, live_ledger = store.load_state("BTC-PAPER", 10_000)[0], live.ledger()
    assert round(live_ledger.usd, 2) == round(paper_ledger.usd, 2)
    assert live_ledger.btc == pytest.approx(paper_ledger.btc, abs=1e-12) == 0
    assert round(live_ledger.realised_pnl_usd, 2) == round(paper_ledger.realised_pnl_usd, 2)


def test_paper_and_live_equity_agree_within_the_fee_when_fees_are_in_base(store):
    sim = BinanceSim(balances={"USDT": D("10000")}, asks=[(D("20010"), D("5"))], bids=[(D("19990"), D("5"))],
                     fee_rate=D("0.001"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        live = Rig(sim, store)
        assert live.execute("p-buy", intent("BUY", 0.004, notional=200)).status == "FILLED"
    paper = ExecutionService(store, PAPER)
    execute_once(paper, "BTC-PAPER", "paper-buy", intent("BUY", 0.004, notional=200), PRICE, NOW)
    paper_ledger, live_ledger = store.load_state("BTC-PAPER", 10_000)[0], live.ledger()
    fee = 0.004 * 20_010 * 0.001
    assert live_ledger.btc == pytest.approx(0.004 * 0.999) and paper_ledger.btc == pytest.approx(0.004)
    assert abs(live_ledger.equity(20_010) - paper_ledger.equity(20_010)) <= fee + 1e-9
    assert live_ledger.btc == pytest.approx(float(sim.balances["BTC"]), abs=1e-12)


def test_the_risk_manager_refuses_while_an_order_is_unresolved_or_the_symbol_is_blocked(rig):
    """The block is a risk reason of its own, before any intent reaches the executor."""
    create_table(PRICES, "prices")
    boto3.client("dynamodb").put_item(TableName="prices", Item={
        "symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(NOW - 10)}, "price": {"N": repr(PRICE)}})
    risk = RiskService(rig.store, LIVE, DynamoDBPriceHistory("prices"))

    def check(execution_id: str) -> list[str]:
        decision = risk.check("BTC-USD", execution_id, prediction(), NOW, NOW, False)
        rig.store.release_lease("BTC-USD", execution_id)
        return decision.result.reasons

    assert not [r for r in check("r-free") if r.startswith("orders:")]
    rig.sim.faults.append(OrderFault("-1007", placed=True, visible_after=10**6))
    lost = rig.execute("e-lost", intent("BUY", 0.004))
    assert lost.status == "UNKNOWN"
    (reason,) = [r for r in check("r-unresolved") if r.startswith("orders:")]
    assert lost.trade_id in reason and "unresolved fate" in reason
    guard, version = rig.store.load_guard("BTC-USD")
    rig.store.save_guard("BTC-USD", replace(guard, unresolved=(), blocked_reason="ledger 0.1 BTC, exchange 0 BTC"),
                         version)
    (reason,) = [r for r in check("r-blocked") if r.startswith("orders:")]
    assert "trading reconcile" in reason and "ledger 0.1 BTC" in reason
