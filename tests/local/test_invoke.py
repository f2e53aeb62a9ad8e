"""`btc-trader local invoke` and `data backfill` against a real local emulator."""

import gzip
import json

import boto3
import pytest

from btc_trader.cli import main
from btc_trader.local import invoke
from btc_trader.stack.environment import function_environments
from btc_trader.stack.settings import load_stack_file

COINBASE = "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"
FOUR_VENUES = {
    "coinbase": COINBASE,
    "kraken": "btcusd_1m_kraken_2023-03-01_2023-03-21.csv.gz",
    "binanceus": "btcusd_1m_binanceus_2023-03-01_2023-03-21.csv.gz",
    "binanceus-usdc": "btcusdc_1m_binanceus_2023-03-01_2023-03-21.csv.gz",
}


def dynamodb(state):
    return boto3.client("dynamodb", endpoint_url=state.endpoint, region_name=state.region,
                        aws_access_key_id="x", aws_secret_access_key="x")


def test_invoke_environment_is_the_deployed_one(running_emulator):
    env = invoke.function_environment("price-collector", running_emulator)
    expected = function_environments(load_stack_file("dev"), running_emulator.names)["price-collector"]
    assert env == expected


@pytest.mark.realdata
def test_invoke_with_four_replays_rejects_the_usdc_source(running_emulator, home, shared_file, capsys):
    replays = [f"--replay={name}={shared_file(file)}" for name, file in FOUR_VENUES.items()]
    code = main(["local", "invoke", "price-collector", "--stack", "dev", "--at", "2023-03-11T12:00:00Z", *replays])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)  # stdout is exactly the JSON result
    (entry,) = result["results"]
    assert "binanceus-usdc" in entry["sources_rejected"]
    assert entry["sources_used"] == ["binanceus", "coinbase", "kraken"]
    assert 20_150 < entry["price"] < 20_250
    assert '"level":"INFO"' in captured.err, "logs go to stderr"
    item = dynamodb(running_emulator).get_item(
        TableName=running_emulator.names.table("prices"),
        Key={"symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(entry["timestamp"])}},
    )
    assert item["Item"]["kind"]["S"] == "collected", "what invoke stored, the next command reads"


def test_invoke_with_a_custom_event_and_errors(running_emulator, home, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["local", "invoke", "price-collector", "--event", str(bad)]) == 2
    assert "malformed JSON at line 1" in capsys.readouterr().err
    assert main(["local", "invoke", "nope"]) == 2
    assert "unknown function 'nope'" in capsys.readouterr().err
    assert main(["local", "invoke", "price-collector", "--replay", "x"]) == 2
    assert "NAME=FILE" in capsys.readouterr().err
    assert main(["local", "invoke", "price-collector", "--replay", f"x={tmp_path}/missing.csv"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["local", "invoke", "price-collector", "--at", "yesterday"]) == 2
    assert "ISO-8601" in capsys.readouterr().err
    assert main(["local", "invoke", "price-collector", "--stack", "prod"]) == 2
    assert "holds stack 'dev'" in capsys.readouterr().err


def test_handler_failure_is_reported_like_lambda(running_emulator, home, tmp_path, capsys):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("time,price\n1,2\n")
    code = main(["local", "invoke", "price-collector", "--at", "2023-03-12T06:00:00Z",
                 "--replay", f"a={wrong}", "--replay", f"b={wrong}"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    error = json.loads(captured.out)
    assert error["errorType"] == "CollectionFailedError"
    assert "expected columns" in error["errorMessage"]


def test_generate_event_prints_a_scheduled_event(capsys):
    assert main(["local", "generate-event", "schedule", "--at", "2023-03-11T12:00:00Z"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["detail-type"] == "Scheduled Event" and event["time"] == "2023-03-11T12:00:00Z"


def write_csv(path, rows):
    with gzip.open(path, "wt") as handle:
        handle.write("timestamp,open,high,low,close,volume\n" + "".join(r + "\n" for r in rows))
    return path


def test_backfill_from_a_file_keeps_collected_prices(running_emulator, home, tmp_path, capsys):
    rows = [f"2024-01-01T00:{m:02d}:00Z,100,101,99,100.{m},1" for m in range(10)]
    path = write_csv(tmp_path / "bars.csv.gz", rows)
    table = running_emulator.names.table("prices")
    client = dynamodb(running_emulator)
    collected_slot = 1704067200 + 5 * 60  # 00:05, the close of the 00:04 bar
    client.put_item(TableName=table, Item={"symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(collected_slot)},
                                           "kind": {"S": "collected"}, "price": {"N": "1"}})
    assert main(["data", "backfill", "--file", str(path)]) == 0
    assert "wrote 9 bars of BTC-USD" in capsys.readouterr().out
    item = client.get_item(TableName=table, Key={"symbol": {"S": "BTC-USD"}, "timestamp": {"N": "1704067260"}})["Item"]
    assert (item["kind"]["S"], float(item["price"]["N"])) == ("backfill", 100.0)
    kept = client.get_item(TableName=table, Key={"symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(collected_slot)}})
    assert kept["Item"]["kind"]["S"] == "collected"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["2024-01-01T00:01:00Z,1,1,1,1,1", "2024-01-01T00:00:00Z,1,1,1,1,1"], "not sorted"),
        (["2024-01-01T00:00:00Z,1,1,1,1,1", "2024-01-01T00:00:00Z,1,1,1,1,1"], "duplicate bar"),
        (["2024-01-01T00:00:00Z,0,1,1,1,1"], "finite and positive"),
        (["2024-01-01T00:00:00Z,1,1,1"], "unreadable row"),
    ],
)
def test_backfill_rejects_bad_files(running_emulator, home, tmp_path, capsys, rows, message):
    assert main(["data", "backfill", "--file", str(write_csv(tmp_path / "bad.csv.gz", rows))]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_backfill_wrong_columns(running_emulator, home, tmp_path, capsys):
    path = tmp_path / "wrong.csv"
    path.write_text("date,price\n2024-01-01,1\n")
    assert main(["data", "backfill", "--file", str(path)]) == 2
    assert "expected columns timestamp,open,high,low,close,volume" in capsys.readouterr().err


@pytest.mark.realdata
def test_backfill_real_file_then_predict_and_evaluate(running_emulator, home, shared_file, capsys):
    from btc_trader.contracts import PredictionResult

    assert main(["data", "backfill", "--file", str(shared_file(COINBASE))]) == 0
    assert "2023-03-01T00:00:00+00:00 .. 2023-03-21T23:59:00+00:00" in capsys.readouterr().out
    pages = dynamodb(running_emulator).get_paginator("query").paginate(
        TableName=running_emulator.names.table("prices"), Select="COUNT",
        KeyConditionExpression="symbol = :s", ExpressionAttributeValues={":s": {"S": "BTC-USD"}},
    )
    assert sum(page["Count"] for page in pages) >= 29_900
    assert main(["local", "invoke", "ml-predictor", "--models", "custom", "--at", "2023-03-11T12:00:00Z"]) == 0
    result = PredictionResult.model_validate_json(capsys.readouterr().out)
    assert result.status == "ok" and [m.model for m in result.models] == ["custom"]
    assert result.as_of == "2023-03-11T12:00:00Z" and result.current_price > 19_000
    assert main(["local", "invoke", "prediction-evaluator", "--models", "custom", "--at", "2023-03-11T13:05:00Z"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["results"][0]["scored"] >= 1


def test_model_and_replay_flags_are_checked(running_emulator, home, capsys):
    assert main(["local", "invoke", "ml-predictor", "--models", "gpt"]) == 2
    assert "--models takes" in capsys.readouterr().err
    assert main(["local", "invoke", "price-collector", "--models", "custom"]) == 2
    assert "--models applies to" in capsys.readouterr().err


def test_environment_parity_for_every_function(running_emulator):
    expected = function_environments(load_stack_file("dev"), running_emulator.names)
    for function in invoke.FUNCTIONS:
        assert invoke.function_environment(function, running_emulator) == expected[function]


def test_generate_workflow_input(capsys):
    assert main(["local", "generate-event", "workflow-input", "--at", "2023-03-11T12:00:00Z"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["symbol"] == "BTC-USD" and event["requested_at"] == "2023-03-11T12:00:00Z"
    assert event["execution_id"].startswith("local-")


def test_reset_kill_switch_against_the_emulator(running_emulator, home, capsys):
    import time
    from dataclasses import replace

    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.local.emulator import aws_environment

    with aws_environment(running_emulator):
        store = DynamoDBTradingStore(running_emulator.names.table("trades"), running_emulator.names.table("trading-state"))
        wallet, risk, version = store.load_state("BTC-USD", 10_000)
        original = (wallet, risk)
        # 0.1 BTC bought at 25,000 with a peak of 12,000; the market is now at 20,000.
        wallet = replace(wallet, usd=7_000, btc=0.1, avg_cost=25_000, peak_equity_usd=12_000)
        store.save_state("BTC-USD", wallet, replace(risk, kill_switch=True, kill_reason="drawdown 11%"), version)
        dynamodb(running_emulator).put_item(TableName=running_emulator.names.table("prices"), Item={
            "symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(int(time.time()) - 30)}, "price": {"N": "20000"}})
    # `--stack prod` without `--aws` names a stack no local emulator holds: refused, nothing touched.
    assert main(["trading", "reset-kill-switch", "--stack", "prod"]) == 2
    assert "no local emulator holds stack 'prod'" in capsys.readouterr().err
    assert main(["trading", "reset-kill-switch"]) == 0
    out = capsys.readouterr().out
    assert "reset (it was engaged: drawdown 11%)" in out and "equity peak set to 9000.00 USD" in out
    with aws_environment(running_emulator):
        wallet, risk, _ = store.load_state("BTC-USD", 10_000)
    assert not risk.kill_switch and wallet.peak_equity_usd == 9_000 and wallet.drawdown_pct(20_000) == 0
    assert main(["trading", "reset-kill-switch"]) == 0
    assert "not engaged" in capsys.readouterr().out
    with aws_environment(running_emulator):  # the session's emulator goes on as it was
        store.save_state("BTC-USD", *original, store.load_state("BTC-USD", 10_000)[2])


def test_local_run_bad_input(home, tmp_path, capsys):
    assert main(["local", "run", "--replay", str(tmp_path / "missing.csv"), "--ticks", "3"]) == 2
    assert "file not found" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    short.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"2024-01-01T{h:02d}:{m:02d}:00Z,100,101,99,100,1\n" for h in range(3) for m in range(60)))
    assert main(["local", "run", "--replay", str(short), "--ticks", "500"]) == 2
    assert "ticks from" in capsys.readouterr().err
    assert main(["local", "run", "--replay", str(short), "--set", "riskThreshold"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_lone_invocations_release_the_lease_where_the_workflow_would(running_emulator, home, tmp_path, capsys):
    """CheckRisk without Execute, and Execute however it ends, release the symbol's lease."""
    import time

    from aws_lambda_powertools.utilities.parameters import base

    # Handlers run in this process: an SSM client another test made (not for the emulator) must go.
    base.DEFAULT_PROVIDERS.clear()
    state = running_emulator
    now = int(time.time()) // 60 * 60
    dynamodb(state).put_item(TableName=state.names.table("prices"), Item={
        "symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(now - 30)}, "price": {"N": "20000"}})
    assert main(["local", "generate-event", "check-risk", "--at", f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))}"]) == 0
    event = json.loads(capsys.readouterr().out)
    lease_key = {"symbol": {"S": "lease#BTC-USD"}}

    def lease():
        return dynamodb(state).get_item(TableName=state.names.table("trading-state"), Key=lease_key).get("Item")

    def invoke_with(function, body):
        path = tmp_path / f"{function}.json"
        path.write_text(json.dumps(body))
        code = main(["local", "invoke", function, "--event", str(path)])
        captured = capsys.readouterr()
        return code, json.loads(captured.out), captured.err

    hold = {**event, "prediction": {**event["prediction"], "current_price": 20_000.0, "predicted_price": 20_010.0}}
    code, risk, err = invoke_with("risk-manager", hold)
    assert code == 0 and not risk["approved"] and lease() is None, (risk, lease(), err[-2000:])
    assert f"released the lease of BTC-USD held by {event['execution_id']}" in err
    buy = {**event, "prediction": {**event["prediction"], "current_price": 20_000.0, "predicted_price": 20_300.0,
                                   "confidence": 0.9, "price_age_s": 30}}
    code, risk, _ = invoke_with("risk-manager", buy)
    assert code == 0 and risk["approved"], risk["reasons"]
    assert lease()["holder"]["S"] == event["execution_id"], "approved: Execute comes next, the lease stays"
    code, refused, err = invoke_with("trade-executor", {**buy, "risk": {**risk, "quantity_btc": 1.0}})
    assert code == 1 and "quantity_btc 1.0 differs from the stored decision's" in refused["errorMessage"]
    assert lease() is None and "released the lease" in err
