"""The technical model against independent plain-Python arithmetic on real candles."""

import math
import statistics

import numpy as np
import pytest

from btc_trader.adapters.candle_files import read_candles
from btc_trader.domain.prediction.model import ForecastError, PriceHistory
from btc_trader.domain.prediction.technical import (
    TechnicalModel,
    technical_signal,
    technical_signals,
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
def test_vectorised_equals_per_bar(hourly):
    prices = np.array(hourly)
    predicted, confidence = technical_signals(prices, horizon_bars=4)
    assert np.isnan(predicted[:50]).all()
    for i in range(50, len(prices), 97):
        signal = technical_signal(prices[: i + 1], horizon_bars=4)
        assert predicted[i] == pytest.approx(signal.predicted_return, rel=1e-9, abs=1e-15)
        assert confidence[i] == pytest.approx(signal.confidence, rel=1e-9, abs=1e-15)


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
