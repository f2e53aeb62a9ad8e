"""`predictions export` on the emulator, replayed by `backtest --predictions`: all three models scored alike."""

from __future__ import annotations

import json

import numpy as np

from btc_trader.adapters.dynamodb_predictions import DynamoDBPredictionStore
from btc_trader.cli import main
from btc_trader.domain.prediction.ensemble import ModelRun
from btc_trader.domain.prediction.model import ModelForecast, PriceHistory
from btc_trader.domain.prediction.result import ensemble_result
from btc_trader.local.emulator import aws_environment
from btc_trader.storage_schema import PREDICTION_SCORES, PREDICTIONS

HOURS = 700
START = 1_500_000_000 - 1_500_000_000 % 86_400  # 2017-07-14: a range no other test of the shared emulator writes
MODELS = '["bedrock","huggingface","custom"]'


def hourly_walk(seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 30_000 * np.exp(np.cumsum(rng.normal(0, 0.006, HOURS)))


def test_exported_predictions_are_replayed_beside_custom(running_emulator, home, tmp_path, capsys):
    close = hourly_walk()
    rng = np.random.default_rng(9)
    names = running_emulator.names
    with aws_environment(running_emulator):
        store = DynamoDBPredictionStore(names.table(PREDICTIONS.role), names.table(PREDICTION_SCORES.role))
        for t in range(HOURS - 1):
            at = START + (t + 1) * 3600  # the decision at bar t's close
            price = float(close[t])
            # Bedrock "knows" the next hour's direction (a planted edge); Chronos guesses.
            ahead = 1 if close[t + 1] > close[t] else -1
            runs = [ModelRun("bedrock", ModelForecast("bedrock", price * (1 + ahead * 0.008), 0.9, price)),
                    ModelRun("huggingface", ModelForecast("huggingface", price * (1 + rng.choice([-1, 1]) * 0.008),
                                                          0.9, price)),
                    ModelRun("custom", error="computed by the backtester, not replayed")]
            if t % 50 == 7:
                runs[0] = ModelRun("bedrock", error="ThrottlingException: slow down")
            history = PriceHistory(np.array([at - 3600]), np.array([price]), 3600, "BTC-USD")
            store.save_result("BTC-USD", at, ensemble_result(runs, {"bedrock": 1, "huggingface": 1}, history, at, 60),
                              execution_id=f"run-{t}", expires_at=at + 86_400)
    exported = tmp_path / "predictions.jsonl"
    window = ["--from", "2017-07-14T00:00:00Z", "--to", "2017-08-13T00:00:00Z"]
    assert main(["predictions", "export", *window, "--out", str(exported)]) == 0
    assert f"wrote {HOURS - 1} predictions of BTC-USD" in capsys.readouterr().out
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(lines) == HOURS - 1 and lines[0]["timestamp"] == START + 3600
    assert {m["model"] for m in lines[0]["models"]} == {"bedrock", "huggingface", "custom"}
    assert any(not m["ok"] and "Throttling" in m["error"] for m in lines[7]["models"])

    csv = tmp_path / "bars.csv"
    open_ = np.concatenate(([close[0]], close[:-1]))
    csv.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{START + i * 3600},{o},{max(o, c)},{min(o, c)},{c},1\n" for i, (o, c) in enumerate(zip(open_, close,
                                                                                               strict=True))))
    assert main(["backtest", "--data", str(csv), "--strategy", "live", "--predictions", str(exported),
                 "--set", f"mlModels={MODELS}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    walk = report["walk_forward"]
    assert set(walk) == {"bedrock", "huggingface", "custom"}, "all three models scored the same way"
    bedrock, chronos = walk["bedrock"], walk["huggingface"]
    assert bedrock["scored"] == sum(1 for t in range(HOURS - 1) if t % 50 != 7) and bedrock["hit_rate"] == 1.0
    assert bedrock["mean_net_bps"] > 0 and bedrock["t_stat_newey_west"] > 5 and bedrock["final_weight"] == 1.0
    assert chronos["calls"] > 600 and chronos["mean_net_bps"] < 0 and chronos["final_weight"] == 0.0
    assert report["model_accuracy"]["bedrock"]["directional_accuracy_pct"] > 90
    assert report["fills"] >= 1 and any("replayed 699 recorded predictions" in n for n in report["notes"])

    assert main(["backtest", "--data", str(csv), "--strategy", "live", "--predictions", str(exported),
                 "--set", 'mlModels=["bedrock"]', "--set", 'symbols=["ETH-USD"]']) == 2
    assert "no recorded prediction of ETH-USD" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"symbol": "BTC-USD"}\n')
    assert main(["backtest", "--data", str(csv), "--strategy", "live", "--predictions", str(bad)]) == 2
    assert "line 1: not an exported prediction" in capsys.readouterr().err
    assert main(["predictions", "export", "--from", "2017-08-13T00:00:00Z", "--to", "2017-07-14T00:00:00Z",
                 "--out", str(bad)]) == 2
    assert "--to must be after --from" in capsys.readouterr().err
