"""Prediction benchmark: DynamoDB reads per predictor run, model compute time, import time.

    .venv/bin/python benchmarks/prediction_bench.py [--data ../shared/data]

Not part of the test run. Prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from btc_trader.adapters.candle_files import read_candles  # noqa: E402
from btc_trader.adapters.dynamodb_codec import serialize  # noqa: E402
from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory, _item_bytes  # noqa: E402
from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository, snapshot_item  # noqa: E402
from btc_trader.domain.prediction.ensemble import ModelRun, combine  # noqa: E402
from btc_trader.domain.prediction.model import PriceHistory  # noqa: E402
from btc_trader.domain.prediction.technical import TechnicalModel, technical_forecasts  # noqa: E402
from btc_trader.domain.prices import SourceQuote, aggregate_quotes  # noqa: E402

SEED_ITEMS = 30 * 24 * 60  # the seed read 30 days of 1-minute items on every run


def collected_item_bytes() -> int:
    """Size of one real collected item (four venues, one rejected), as the collector stores it."""
    quotes = [SourceQuote(s, "BTC-USD", 20_000.0 + i, 1_678_536_000, 1234.5, 1.2)
              for i, s in enumerate(["coingecko", "binance", "coinbase", "kraken"])]
    snapshot = aggregate_quotes(quotes, symbol="BTC-USD", at=1_678_536_000, max_divergence_bps=150,
                                max_staleness_s=300, min_sources=2)
    return _item_bytes(serialize(snapshot_item(snapshot, expires_at=1_700_000_000)))


def history_reads(closes: np.ndarray, start: int) -> dict[str, dict[str, float]]:
    figures = {}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="prices", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"}, {"AttributeName": "timestamp", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"},
                                  {"AttributeName": "timestamp", "AttributeType": "N"}],
        )
        from btc_trader.domain.candles import Candle

        candles = [Candle(start + 60 * i, float(p), float(p), float(p), float(p), 1.0) for i, p in enumerate(closes)]
        DynamoDBPriceRepository("prices", client=client).save_candles("BTC-USD", candles, source="bench")
        at = start + 60 * len(closes)
        reader = DynamoDBPriceHistory("prices", client=client)
        # dev: 5-minute bars, bedrock (48) + custom (51) -> 51 bars; prod: 1-minute bars, Chronos 256.
        for stack, bars, bar_seconds in (("dev", 51, 300), ("prod", 256, 60)):
            reader.load("BTC-USD", at, bars, bar_seconds)
            stats = reader.last_read
            # DynamoDB bills a Query by the full items it reads, whatever the projection.
            full = client.query(TableName="prices", KeyConditionExpression="symbol = :s AND #ts BETWEEN :a AND :b",
                                ExpressionAttributeNames={"#ts": "timestamp"},
                                ExpressionAttributeValues={":s": {"S": "BTC-USD"}, ":a": {"N": str(at - int(bars * bar_seconds * 1.5))},
                                                           ":b": {"N": str(at)}})["Items"]
            figures[stack] = {"bars": bars, "items_read": stats.items, "pages": stats.pages,
                              "bytes_returned_projected": stats.bytes,
                              "bytes_read_full_items": sum(_item_bytes(i) for i in full)}
    return figures


def compute_times(closes: np.ndarray) -> dict[str, float]:
    """Per-run cost (one prediction) and whole-series cost (a backtest) of technical + ensemble."""
    model = TechnicalModel()
    history = PriceHistory(np.arange(len(closes)) * 60, closes, 60)
    runs = 2_000
    started = time.perf_counter()
    for i in range(runs):
        window = history.tail(model.history_needed + i)
        forecast = model.predict(window.tail(model.history_needed), 60)
        combine([ModelRun("custom", forecast)], {"custom": 1.0}, forecast.current_price)
    per_run = (time.perf_counter() - started) / runs
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        technical_forecasts(closes, horizon_bars=60)
        best = min(best, time.perf_counter() - started)
    return {"technical_plus_ensemble_per_run_ms": round(per_run * 1000, 4),
            "technical_vectorised_whole_series_ms": round(best * 1000, 2),
            "technical_vectorised_bars_per_s": round(len(closes) / best),
            "series_bars": len(closes)}


def import_time(module: str) -> float:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stderr
    totals = [int(m.group(1)) for m in re.finditer(r"\|\s+(\d+) \| " + re.escape(module) + r"$", out, re.M)]
    return totals[-1] / 1000 if totals else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", help="also write the JSON here (benchmarks/results/, read by readme_figures.py)")
    args = parser.parse_args()
    path = Path(args.data) / "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"
    if path.exists():
        candles = read_candles(path)
        closes = np.array([c.close for c in candles])
        start, source = candles[0].timestamp, path.name
    else:
        rng = np.random.default_rng(0)
        closes = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.0005, 30_240)))
        start, source = 1_677_628_800, "synthetic random walk (real data not found)"
    month = np.resize(closes, SEED_ITEMS)  # 30 days of 1-minute bars
    seed_bytes = SEED_ITEMS * collected_item_bytes()
    reads = history_reads(closes[-3 * 24 * 60:], start + 60 * (len(closes) - 3 * 24 * 60))
    for figures in reads.values():
        figures["fewer_bytes_read_than_seed_x"] = round(seed_bytes / max(1, figures["bytes_read_full_items"]), 1)
        figures["fewer_bytes_returned_than_seed_x"] = round(seed_bytes / max(1, figures["bytes_returned_projected"]), 1)
    report = {
        "data": source,
        "seed_per_run": {"items_read": SEED_ITEMS, "bytes_read": seed_bytes,
                         "note": "one unpaginated query: DynamoDB stops at 1 MB, so the seed saw only the first page"},
        "ours_per_run": reads,
        "compute": compute_times(month),
        "cold_import_ms": {m: import_time(m) for m in ("functions.ml_predictor", "functions.price_collector")},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
