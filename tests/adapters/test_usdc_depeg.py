"""Real data: the USDC de-peg of 2023-03-11, replayed from four venues' 1-minute candles."""

import statistics
from datetime import UTC, datetime

import pytest

from btc_trader.adapters.price_sources import build_session, build_sources, fetch_all, replay_spec
from btc_trader.domain.prices import aggregate_quotes
from btc_trader.stack.settings import load_stack_file

FILES = {
    "coinbase": "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz",
    "kraken": "btcusd_1m_kraken_2023-03-01_2023-03-21.csv.gz",
    "binanceus": "btcusd_1m_binanceus_2023-03-01_2023-03-21.csv.gz",
    "binanceus-usdc": "btcusdc_1m_binanceus_2023-03-01_2023-03-21.csv.gz",
}
USD_VENUES = ("coinbase", "kraken", "binanceus")


@pytest.mark.realdata
@pytest.mark.parametrize("minute", ["2023-03-11T07:50:00Z", "2023-03-11T12:00:00Z", "2023-03-11T18:30:00Z",
                                    "2023-03-11T23:00:00Z"])
def test_usdc_pair_is_excluded_and_price_follows_usd_venues(shared_file, minute):
    settings = load_stack_file("dev")
    specs = [replay_spec(name, shared_file(file)) for name, file in FILES.items()]
    sources = build_sources(specs, session=build_session(0), timeout_s=1)
    at = int(datetime.fromisoformat(minute.replace("Z", "+00:00")).astimezone(UTC).timestamp())
    fetched, rejections = fetch_all(sources, "BTC-USD", at)
    snapshot = aggregate_quotes(
        (f.quote for f in fetched), rejections, symbol="BTC-USD", at=at,
        max_divergence_bps=settings.max_source_divergence_bps,
        max_staleness_s=settings.max_source_staleness_seconds, min_sources=settings.min_sources,
    )
    assert "binanceus-usdc" in snapshot.sources_rejected
    assert snapshot.sources_rejected["binanceus-usdc"].startswith("outlier: +")
    usd = [snapshot.source_prices[v] for v in USD_VENUES if v in snapshot.source_prices]
    assert len(usd) >= 2
    assert abs(snapshot.price - statistics.median(usd)) / statistics.median(usd) * 10_000 < 5
    assert set(snapshot.sources_used) <= set(USD_VENUES)
