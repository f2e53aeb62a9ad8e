import math

import pytest

from btc_trader.domain.prices import (
    InsufficientSourcesError,
    SourceQuote,
    SourceRejection,
    aggregate_quotes,
    bps_from,
    collection_time,
)

AT = 1_678_536_000


def quote(source: str, price: float, age: int = 10, symbol: str = "BTC-USD") -> SourceQuote:
    return SourceQuote(source=source, symbol=symbol, price=price, observed_at=AT - age)


def aggregate(quotes, rejections=(), **overrides):
    limits = dict(symbol="BTC-USD", at=AT, max_divergence_bps=150, max_staleness_s=300, min_sources=2)
    limits.update(overrides)
    return aggregate_quotes(quotes, rejections, **limits)


def test_median_of_agreeing_sources():
    snapshot = aggregate([quote("a", 100.0), quote("b", 100.4), quote("c", 100.2)])
    assert snapshot.price == pytest.approx(100.2)
    assert snapshot.sources_used == ("a", "b", "c")
    assert snapshot.sources_rejected == {}
    assert snapshot.spread_bps == pytest.approx(0.4 / 100.2 * 10_000)
    assert snapshot.divergence_bps == pytest.approx(0.2 / 100.2 * 10_000)


def test_outlier_is_excluded_and_recorded_with_its_distance():
    snapshot = aggregate([quote("a", 20_000.0), quote("b", 20_010.0), quote("c", 20_005.0), quote("usdc", 21_000.0)])
    assert "usdc" not in snapshot.sources_used
    assert snapshot.sources_rejected["usdc"].startswith("outlier: +")
    assert snapshot.price == pytest.approx(20_005.0)
    # The outlier's quote is still kept as evidence.
    assert snapshot.source_prices["usdc"] == 21_000.0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (quote("x", float("nan")), "finite"),
        (quote("x", float("inf")), "finite"),
        (quote("x", 0.0), "positive"),
        (quote("x", -5.0), "positive"),
        (quote("x", 100.0, age=301), "stale"),
        (quote("x", 100.0, age=-500), "future"),
        (quote("x", 100.0, symbol="ETH-USD"), "ETH-USD"),
    ],
)
def test_bad_quotes_are_rejected_with_a_reason(bad, reason):
    snapshot = aggregate([quote("a", 100.0), quote("b", 100.1), bad])
    assert reason in snapshot.sources_rejected["x"]
    assert "x" not in snapshot.sources_used


def test_too_few_sources_raises_with_every_reason():
    with pytest.raises(InsufficientSourcesError) as caught:
        aggregate([quote("a", 100.0), quote("b", 0.0)], [SourceRejection("c", "HTTP 500")])
    error = caught.value
    assert (error.have, error.need) == (1, 2)
    assert "b: price must be positive" in str(error)
    assert "c: HTTP 500" in str(error)


def test_zero_sources_is_a_clear_error_not_a_crash():
    with pytest.raises(InsufficientSourcesError, match="0 valid price source"):
        aggregate([])


def test_outliers_can_leave_too_few_sources():
    with pytest.raises(InsufficientSourcesError) as caught:
        aggregate([quote("a", 100.0), quote("b", 200.0)], min_sources=2, max_divergence_bps=100)
    assert set(caught.value.rejected) == {"a", "b"}


def test_24h_fields_are_medians_of_what_venues_give():
    quotes = [
        SourceQuote("a", "BTC-USD", 100.0, AT, volume_24h=10.0, change_24h_pct=1.0),
        SourceQuote("b", "BTC-USD", 100.0, AT, volume_24h=30.0),
        SourceQuote("c", "BTC-USD", 100.0, AT),
    ]
    snapshot = aggregate(quotes)
    assert snapshot.volume_24h == 20.0
    assert snapshot.change_24h_pct == 1.0


def test_helpers():
    assert bps_from(101.0, 100.0) == pytest.approx(100.0)
    assert collection_time(AT + 59) == AT
    assert collection_time(AT) == AT
    assert not math.isnan(bps_from(1, 1))


# --- plausibility against the last stored price (#16) -------------------------------------------

def _quote(source, price, at=1000):
    from btc_trader.domain.prices import SourceQuote

    return SourceQuote(source=source, symbol="BTC-USD", price=price, observed_at=at)


def test_a_quote_a_multiple_of_the_last_stored_price_is_rejected():
    from btc_trader.domain.prices import InsufficientSourcesError, StoredPrice, aggregate_quotes

    last = StoredPrice(price=100.0, timestamp=940)
    kwargs = dict(symbol="BTC-USD", at=1000, max_divergence_bps=150, max_staleness_s=300, last=last)
    # Both venues agree with each other, but on a price 1e10 times the last one: a broken feed.
    with pytest.raises(InsufficientSourcesError, match="implausible: 1e\\+10x the last stored price"):
        aggregate_quotes([_quote("a", 1e12), _quote("b", 1e12)], min_sources=1, **kwargs)
    snapshot = aggregate_quotes([_quote("a", 101.0), _quote("b", 1e-12)], min_sources=1, **kwargs)
    assert snapshot.price == 101.0 and "implausible" in snapshot.sources_rejected["b"]


def test_an_old_or_missing_last_price_does_not_judge():
    from btc_trader.domain.prices import StoredPrice, aggregate_quotes

    kwargs = dict(symbol="BTC-USD", at=1_000_000, max_divergence_bps=150, max_staleness_s=300, min_sources=1)
    old = StoredPrice(price=100.0, timestamp=1)
    quotes = [_quote("a", 250.0, 1_000_000)]
    assert aggregate_quotes(quotes, last=old, **kwargs).price == 250.0
    assert aggregate_quotes(quotes, last=None, **kwargs).price == 250.0


def test_negative_volume_and_impossible_change_are_reasons():
    from btc_trader.domain.prices import SourceQuote, check_quote

    bad_volume = SourceQuote("a", "BTC-USD", 10.0, 1000, volume_24h=-1.0)
    bad_change = SourceQuote("a", "BTC-USD", 10.0, 1000, change_24h_pct=-150.0)
    assert "volume" in check_quote(bad_volume, at=1000, max_staleness_s=60)
    assert "change" in check_quote(bad_change, at=1000, max_staleness_s=60)
    assert "finite" in check_quote(SourceQuote("a", "BTC-USD", 10**400, 1000), at=1000, max_staleness_s=60)
