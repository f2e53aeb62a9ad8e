"""`data download`: ccxt's public OHLCV, paginated and rate-limit aware, served from documented shapes.

Binance's kline row (tests/fixtures/binance_klines.json, from ../shared/fixtures) is an array of
12 with string prices; the server below answers `GET /api/v3/klines` with rows of that shape
for whatever window ccxt asks, never past "now", as the exchange does.
"""

import copy
import gzip
import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from btc_trader.adapters.ohlcv_download import DownloadError, download_candles, write_candle_file
from btc_trader.backtest.data import load_bars
from btc_trader.cli import main
from tests.conftest import load_fixture

API = "https://api.binance.com/api/v3"
MINUTE_MS = 60_000


def kline(open_ms: int) -> list:
    row = copy.deepcopy(load_fixture("binance_klines.json")[0])
    price = 20_000 + (open_ms // MINUTE_MS) % 97
    row[0], row[6] = open_ms, open_ms + MINUTE_MS - 1
    row[1:6] = [f"{price:.8f}", f"{price + 5:.8f}", f"{price - 5:.8f}", f"{price + 1:.8f}", "1.50000000"]
    return row


class KlineServer:
    """Serves 1m klines from startTime, up to `limit` (max 1000) and never past now."""

    def __init__(self, mock, now_ms, refuse_first=0):
        self.calls, self.now_ms, self.refuse = 0, now_ms, refuse_first
        mock.get(f"{API}/exchangeInfo", json=load_fixture("binance_exchange_info_btcusdt.json"))
        mock.add_callback(responses.GET, f"{API}/klines", callback=self)

    def __call__(self, request):
        self.calls += 1
        if self.refuse:
            self.refuse -= 1
            return 429, {"Retry-After": "1"}, json.dumps({"code": -1003, "msg": "Too many requests."})
        query = parse_qs(urlparse(request.url).query)
        assert query["symbol"] == ["BTCUSDT"] and query["interval"] == ["1m"]
        start = int(query["startTime"][0])
        limit = min(int(query.get("limit", ["500"])[0]), 1000)
        first = -(-start // MINUTE_MS) * MINUTE_MS
        rows = [kline(t) for t in range(first, first + limit * MINUTE_MS, MINUTE_MS) if t <= self.now_ms]
        return 200, {}, json.dumps(rows)


@pytest.fixture
def binance():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_pages_through_the_window_and_drops_the_forming_bar(binance):
    now_ms = int(time.time() * 1000)
    server = KlineServer(binance, now_ms)
    start = now_ms // 1000 - 2_500 * 60
    candles, market = download_candles("binance", "BTC-USD", "1m", start, now_ms // 1000, sleep=lambda s: None)
    assert market == "BTC/USDT"  # Binance lists no BTC/USD: the stablecoin market stands in
    assert server.calls == 3  # 1000 + 1000 + the rest
    steps = {b.timestamp - a.timestamp for a, b in zip(candles, candles[1:], strict=False)}
    assert steps == {60}
    assert candles[-1].timestamp * 1000 + MINUTE_MS <= now_ms  # closed bars only
    assert abs(len(candles) - 2_500) <= 2
    assert candles[0].close == float(kline(candles[0].timestamp * 1000)[4])


def test_a_rate_limit_is_waited_out(binance):
    now_ms = int(time.time() * 1000)
    server = KlineServer(binance, now_ms, refuse_first=2)
    waits = []
    candles, _ = download_candles("binance", "BTC-USD", "1m", now_ms // 1000 - 3_600, now_ms // 1000,
                                  sleep=waits.append)
    assert len(waits) == 2 and waits == sorted(waits) and len(candles) >= 58
    assert server.calls == 3


def test_offline_says_so(binance):
    binance.get(f"{API}/exchangeInfo", body=requests.ConnectionError("Failed to resolve api.binance.com"))
    with pytest.raises(DownloadError, match=r"cannot reach binance .*Are you offline\?"):
        download_candles("binance", "BTC-USD", "1m", 0, 3_600)


def test_bad_requests_are_named(binance):
    binance.get(f"{API}/exchangeInfo", json=load_fixture("binance_exchange_info_btcusdt.json"))
    with pytest.raises(DownloadError, match="did you mean binance"):
        download_candles("binanse", "BTC-USD", "1m", 0, 3_600)
    with pytest.raises(DownloadError, match="lists no market ETH/EUR"):
        download_candles("binance", "ETH-EUR", "1m", 0, 3_600)
    with pytest.raises(DownloadError, match="--timeframe '7m' is not offered by binance"):
        download_candles("binance", "BTC-USD", "7m", 0, 3_600)


def test_the_command_writes_a_file_backtest_accepts(binance, tmp_path, capsys):
    KlineServer(binance, int(time.time() * 1000))
    out = tmp_path / "btc.csv.gz"
    assert main(["data", "download", "--exchange", "binance", "--symbol", "BTC-USD", "--days", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 14" in printed and "1m bars of BTC/USDT from binance to" in printed and str(out) in printed
    header = gzip.decompress(out.read_bytes()).decode().splitlines()[0:2]
    assert header[0] == "timestamp,open,high,low,close,volume" and header[1].split(",")[0].endswith("Z")
    bars = load_bars(out)
    assert bars.bar_seconds == 60 and 1_438 <= len(bars) <= 1_440
    assert main(["backtest", "--data", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bars"] == len(bars)


def test_the_command_offline(binance, tmp_path, capsys):
    binance.get(f"{API}/exchangeInfo", body=requests.ConnectionError("Network is unreachable"))
    assert main(["data", "download", "--days", "1", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach binance") and "offline" in err
    assert not (tmp_path / "x.csv").exists()


def test_writing_nothing_is_refused(tmp_path):
    from btc_trader.domain.candles import CandleError

    with pytest.raises(CandleError):
        write_candle_file(tmp_path / "empty.csv", [])
