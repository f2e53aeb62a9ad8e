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
