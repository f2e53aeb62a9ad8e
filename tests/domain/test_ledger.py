"""The live ledger: fees in their currency, dust, reconciliation, adoption, protected orders."""

import pytest

from btc_trader.domain.ledger import (
    Fee,
    MarketRules,
    Quote,
    adopt,
    book_fill,
    is_dust,
    protect,
    reconcile,
)
from btc_trader.domain.orders import order_state
from btc_trader.domain.wallet import PaperWallet

RULES = MarketRules(base="BTC", quote="USDT", min_qty=0.00001, step=0.00001, tick=0.01, min_notional=5.0)


def test_a_buy_with_the_fee_in_base_holds_what_the_account_holds():
    wallet, fill = book_fill(PaperWallet.start(10_000), "BUY", 0.25, 20_000, (Fee(0.00025, "BTC"),), RULES)
    assert wallet.btc == pytest.approx(0.24975)
    assert fill.fee_value_quote == pytest.approx(5.0)


def test_fees_in_quote_in_base_and_in_a_third_asset():
    start = PaperWallet.start(10_000)
    quote_fee, _ = book_fill(start, "BUY", 0.1, 20_000, (Fee(2.0, "USDT"),), RULES)
    assert (quote_fee.btc, quote_fee.usd) == (pytest.approx(0.1), pytest.approx(7_998))
    base_fee, _ = book_fill(start, "BUY", 0.1, 20_000, (Fee(0.0001, "BTC"),), RULES)
    assert (base_fee.btc, base_fee.usd) == (pytest.approx(0.0999), pytest.approx(8_000))
    assert base_fee.avg_cost == pytest.approx(2_000 / 0.0999), "the fee in base raises the cost of each BTC held"
    bnb, booked = book_fill(start, "BUY", 0.1, 20_000, (Fee(0.006, "BNB"),), RULES)
    assert (bnb.btc, bnb.usd) == (pytest.approx(0.1), pytest.approx(8_000)) and booked.other_fees == (Fee(0.006, "BNB"),)


def test_a_sell_books_the_quote_fee_and_realised_pnl():
    held = PaperWallet(usd=0, btc=0.1, avg_cost=20_000, peak_equity_usd=2_000)
    wallet, fill = book_fill(held, "SELL", 0.1, 21_000, (Fee(2.1, "USDT"),), RULES)
    assert wallet.btc == 0 and wallet.usd == pytest.approx(2_097.9)
    assert fill.realised_pnl == pytest.approx(97.9) and fill.shortfall is None


def test_a_fill_the_ledger_cannot_hold_is_reported_not_hidden():
    _, fill = book_fill(PaperWallet(usd=0, btc=0.05), "SELL", 0.1, 20_000, (), RULES)
    assert fill.shortfall and "cannot hold" in fill.shortfall


def test_dust_is_below_what_the_market_lets_anyone_trade():
    assert is_dust("BTC", 0.000009, RULES, 20_000)  # under minQty
    assert is_dust("BTC", 0.0002, RULES, 20_000)  # 4 USDT: under the minimum notional
    assert not is_dust("BTC", 0.0003, RULES, 20_000)
    assert is_dust("USDT", -4.99, RULES, 20_000) and not is_dust("USDT", 5.0, RULES, 20_000)


def test_reconcile_names_each_side_and_flags_only_differences_beyond_dust():
    ledger = PaperWallet(usd=100, btc=0.01)
    assert reconcile(ledger, {"BTC": 0.010005, "USDT": 101}, RULES, 20_000).agrees
    check = reconcile(ledger, {"BTC": 0.008, "USDT": 100}, RULES, 20_000)
    assert not check.agrees and [d.asset for d in check.beyond_dust] == ["BTC"]
    assert "BTC ledger 0.01000000 exchange 0.00800000" in check.describe()


def test_adoption_takes_the_exchange_balances_and_values_unknown_btc_at_the_price():
    adopted = adopt(PaperWallet(usd=10_000, btc=0.0, peak_equity_usd=10_000), {"BTC": 0.5, "USDT": 300}, RULES, 20_000)
    assert (adopted.usd, adopted.btc, adopted.avg_cost) == (300, 0.5, 20_000)


def test_protected_buy_is_a_limit_within_slippage_whose_worst_cost_fits_the_budget():
    wallet = PaperWallet.start(1_000)
    order = protect("BUY", 0.01, 100, Quote(19_990, 20_000), 20_000, wallet, RULES, 30, 10, 150)
    assert order.limit_price == pytest.approx(20_060)
    assert order.worst_cost <= 100 and order.quantity == pytest.approx(0.00498)
    sell = protect("SELL", 0.01, 0, Quote(19_990, 20_000), 20_000, PaperWallet(usd=0, btc=0.004), RULES, 30, 10, 150)
    assert sell.limit_price == pytest.approx(19_930.03) and sell.quantity == pytest.approx(0.004)


def test_protect_refuses_with_its_reason():
    wallet = PaperWallet.start(1_000)
    assert protect("BUY", 0.01, 100, Quote(20_990, 21_000), 20_000, wallet, RULES, 30, 10, 150).startswith("divergence:")
    assert protect("BUY", 0.0001, 2, Quote(19_990, 20_000), 20_000, wallet, RULES, 30, 10, 150).startswith("size:")
    assert protect("BUY", 0.01, 100, Quote(0, 0), 20_000, wallet, RULES, 30, 10, 150).startswith("quote:")


@pytest.mark.parametrize(("status", "filled", "amount", "state"), [
    ("open", 0, 1, "OPEN"), ("closed", 1, 1, "FILLED"), ("expired", 0.4, 1, "PARTIAL"), ("expired", 0, 1, "EXPIRED"),
    ("canceled", 0, 1, "EXPIRED"), ("rejected", 0, 1, "REJECTED"), (None, 0, 1, "OPEN"),
])
def test_exchange_statuses_map_to_trade_statuses(status, filled, amount, state):
    assert order_state(status, filled, amount) == state
