"""Paper wallet invariants, property-tested, and the fill convention."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_trader.domain.wallet import PaperWallet, WalletError

orders = st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), st.floats(1e-6, 5.0), st.floats(1_000.0, 100_000.0)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(orders=orders, fee=st.floats(0, 100), slip=st.floats(0, 100), cash=st.floats(10.0, 1e6))
def test_never_negative_and_equity_identity(orders, fee, slip, cash):
    wallet = PaperWallet.start(cash)
    fees = 0.0
    for side, quantity, price in orders:
        try:
            wallet, fill = wallet.fill(side, quantity, price, fee, slip)
        except WalletError:
            continue
        assert fill.quantity_btc <= quantity + 1e-12
        fees += fill.fee_usd
        assert wallet.usd >= 0 and wallet.btc >= 0
        assert wallet.equity(price) == pytest.approx(wallet.usd + wallet.btc * price)
        assert wallet.fees_paid_usd == pytest.approx(fees)
        assert wallet.peak_equity_usd >= wallet.equity(price) - 1e-6


def test_buy_pays_slippage_and_fee_then_sell_realises_pnl():
    wallet = PaperWallet.start(10_000)
    wallet, buy = wallet.fill("BUY", 0.1, 20_000, fee_bps=10, slippage_bps=5)
    assert buy.price == pytest.approx(20_010)
    assert buy.fee_usd == pytest.approx(2_001 * 0.001)
    assert wallet.usd == pytest.approx(10_000 - 2_001 - 2.001)
    wallet, sell = wallet.fill("SELL", 0.1, 21_000, fee_bps=10, slippage_bps=5)
    assert sell.price == pytest.approx(20_989.5)
    expected = (20_989.5 - (2_001 + 2.001) / 0.1) * 0.1 - sell.fee_usd
    assert sell.realised_pnl_usd == pytest.approx(expected)
    assert wallet.btc == 0 and wallet.realised_pnl_usd == pytest.approx(expected)


def test_orders_that_do_not_fit_are_shrunk_or_refused():
    wallet = PaperWallet.start(100)
    wallet, fill = wallet.fill("BUY", 1.0, 20_000, 10, 0)
    assert fill.shrunk and fill.notional_usd + fill.fee_usd == pytest.approx(100)
    with pytest.raises(WalletError, match="cannot buy"):
        wallet.fill("BUY", 1.0, 20_000, 10, 0)
    wallet, fill = wallet.fill("SELL", 5.0, 20_000, 10, 0)
    assert fill.shrunk and wallet.btc == 0
    with pytest.raises(WalletError, match="cannot sell"):
        wallet.fill("SELL", 1.0, 20_000, 10, 0)
    with pytest.raises(WalletError, match="starting cash"):
        PaperWallet.start(0)


def test_drawdown_from_peak():
    wallet = PaperWallet.start(1_000)
    wallet, _ = wallet.fill("BUY", 0.04, 20_000, 0, 0)
    wallet = wallet.mark(25_000)
    assert wallet.peak_equity_usd == pytest.approx(1_200)
    assert wallet.drawdown_pct(20_000) == pytest.approx((1 - 1_000 / 1_200) * 100)
