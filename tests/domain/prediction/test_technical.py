"""The technical model against independent plain-Python arithmetic on real candles."""

import math
import statistics

import numpy as np
import pytest

from btc_trader.adapters.candle_files import read_candles
from btc_trader.domain.prediction.model import ForecastError, PriceHistory
from btc_trader.domain.prediction.technical import (
    TechnicalModel,
    technical_forecasts,
    technical_signal,
)


def reference(prices: list[float]) -> tuple[float, float, float, float]:
    """SMA20, SMA50, 10-bar momentum and volatility, written out longhand."""
    last51 = prices[-51:]
    sma20 = sum(last51[-20:]) / 20
    sma50 = sum(last51[-50:]) / 50
    momentum = last51[-1] / last51[-11] - 1
    returns = [math.log(b / a) for a, b in zip(last51, last51[1:], strict=False)]
    volatility = statistics.pstdev(returns)
    return sma20, sma50, momentum, volatility


@pytest.fixture(scope="module")
def hourly(request):
    shared = request.getfixturevalue("shared_file")
    return [c.close for c in read_candles(shared("btcusd_1h_bitstamp_2018-05-15_2023-01-25.csv.gz"))][:3000]


@pytest.mark.realdata
def test_measures_equal_an_independent_computation(hourly):
    for end in (51, 400, 1234, 2999):
        prices = hourly[:end]
        signal = technical_signal(np.array(prices), horizon_bars=1)
        sma20, sma50, momentum, volatility = reference(prices)
        assert signal.sma_fast == pytest.approx(sma20, rel=1e-12)
        assert signal.sma_slow == pytest.approx(sma50, rel=1e-12)
        assert signal.momentum == pytest.approx(momentum, rel=1e-9)
        assert signal.volatility == pytest.approx(volatility, rel=1e-9)
        assert 0 <= signal.confidence <= 1
        assert abs(signal.predicted_return) <= 2 * volatility * 1 + 1e-12


@pytest.mark.realdata
def test_vectorised_equals_per_call(hourly):
    prices = np.array(hourly)
    vectorised = technical_forecasts(prices, horizon_bars=4)
    assert np.isnan(vectorised.predicted_price[:50]).all() and not vectorised.direction[:50].any()
    model = TechnicalModel()
    for i in range(50, len(prices)):
        history = PriceHistory(np.arange(i + 1) * 3600, prices[: i + 1], 3600)
        forecast = model.predict(history.tail(model.history_needed), 4 * 60)
        assert vectorised.predicted_price[i] == pytest.approx(forecast.predicted_price, rel=1e-12)
        assert vectorised.confidence[i] == pytest.approx(forecast.confidence, rel=1e-9, abs=1e-15)
        assert vectorised.direction[i] == {"up": 1, "down": -1, "stable": 0}[forecast.direction]


@pytest.mark.realdata
def test_on_real_one_minute_candles_the_confidence_spreads(shared_file):
    candles = read_candles(shared_file("btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"))
    prices = np.array([c.close for c in candles])
    forecasts = technical_forecasts(prices, horizon_bars=60)
    confidence = forecasts.confidence[50:]
    assert np.isfinite(confidence).all() and (confidence >= 0).all() and (confidence <= 1).all()
    # Measured, not fixed: some bars clear the executor's 0.75 gate and most do not.
    assert 0.0 < (confidence > 0.75).mean() < 0.5
    assert {-1, 0, 1} <= set(np.unique(forecasts.direction[50:]).tolist())
    for end in (51, 10_000, len(prices)):
        sma20, sma50, momentum, volatility = reference(list(prices[:end]))
        signal = technical_signal(prices[:end], horizon_bars=60)
        assert (signal.sma_fast, signal.sma_slow) == (pytest.approx(sma20, rel=1e-12), pytest.approx(sma50, rel=1e-12))
        assert signal.momentum == pytest.approx(momentum, rel=1e-9)
        assert signal.volatility == pytest.approx(volatility, rel=1e-9)


def test_reads_only_the_bars_it_needs():
    rng = np.random.default_rng(3)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, 500)))
    assert TechnicalModel().history_needed == 51
    whole = technical_signal(prices, 10)
    tail = technical_signal(prices[-51:], 10)
    assert whole == tail


def test_confidence_comes_from_the_data():
    rng = np.random.default_rng(1)
    quiet_trend = 100 * np.exp(np.cumsum(np.full(60, 0.002) + rng.normal(0, 0.0005, 60)))
    noisy_flat = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    model = TechnicalModel()
    strong = model.predict(PriceHistory(np.arange(60) * 60, quiet_trend, 60), 60)
    weak = model.predict(PriceHistory(np.arange(60) * 60, noisy_flat, 60), 60)
    assert strong.confidence > 0.75 > weak.confidence, "a fixed 0.7 could never pass a 0.75 gate"
    assert strong.direction == "up"


def test_needs_enough_bars():
    with pytest.raises(ForecastError, match="needs 51 bars"):
        TechnicalModel().predict(PriceHistory(np.arange(10), np.ones(10) * 100, 60), 60)
