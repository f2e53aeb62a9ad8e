"""SAM-style local development: one persistent emulator, the Lambda API, env-vars, the main job."""

from __future__ import annotations

import json
import runpy
import socket

import boto3
import pytest
import responses
from botocore.exceptions import ClientError

from btc_trader.cli import main
from btc_trader.local import emulator, lambda_registry
from btc_trader.local.events import KINDS
from btc_trader.local.lambda_server import LocalLambdaServer
from btc_trader.local.run import local_run
from tests.conftest import REPO_ROOT as PROJECT_ROOT
from tests.conftest import require_lambda_build
from tests.infra.harness import run_program

REPLAY = "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"
LOOSE = ["--set", "riskThreshold=0.1", "--set", "buyThresholdPct=0.1", "--set", "sellThresholdPct=-0.1"]


def client(state, service):
    return boto3.client(service, endpoint_url=state.endpoint, region_name=state.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def pulumi_dev():
    require_lambda_build("dev")
    mocks = run_program("dev", lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")))
    return mocks


def test_emulator_holds_what_the_pulumi_program_creates(running_emulator, pulumi_dev):
    state = running_emulator
    deployed = {r.inputs["name"]: r.inputs for r in pulumi_dev.of_type("aws:lambda/function:Function")}
    local = {f["FunctionName"]: f for f in client(state, "lambda").list_functions()["Functions"]}
    assert set(local) == set(deployed)
    for name, inputs in deployed.items():
        # Every variable, every value: the handlers see locally what they see in AWS.
        assert local[name]["Environment"]["Variables"] == inputs["environment"]["variables"], name
        assert local[name]["MemorySize"] == inputs["memorySize"] and local[name]["Timeout"] == inputs["timeout"]
    tables = {r.inputs["name"] for r in pulumi_dev.of_type("aws:dynamodb/table:Table")}
    assert tables == set(client(state, "dynamodb").list_tables()["TableNames"])
    (bucket,) = [r.inputs["bucket"] for r in pulumi_dev.of_type("aws:s3/bucket:Bucket")]
    assert bucket in {b["Name"] for b in client(state, "s3").list_buckets()["Buckets"]}
    (topic,) = [r.inputs["name"] for r in pulumi_dev.of_type("aws:sns/topic:Topic")]
    assert any(t["TopicArn"].endswith(":" + topic) for t in client(state, "sns").list_topics()["Topics"])
    parameters = {r.inputs["name"] for r in pulumi_dev.of_type("aws:ssm/parameter:Parameter")}
    assert parameters <= {p["Name"] for p in client(state, "ssm").describe_parameters()["Parameters"]}
    (machine,) = pulumi_dev.of_type("aws:sfn/stateMachine:StateMachine")
    arn = emulator.state_machine_arn(state)
    local_definition = json.loads(client(state, "stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"])
    deployed_definition = json.loads(machine.inputs["definition"])
    # The mocks' topic ARN has another shape than a real one; everything else is identical.
    for definition in (local_definition, deployed_definition):
        for name in ("Notify", "AlertWithOrder", "AlertBeforeOrder"):
            definition["States"][name]["Parameters"]["TopicArn"] = "topic"
    assert local_definition == deployed_definition
    assert machine.inputs["name"] == state.names.state_machine


def test_up_invoke_generate_run_inspect_in_sequence(running_emulator, home, shared_file, tmp_path, capsys):
    replay = str(shared_file(REPLAY))
    assert main(["local", "generate-event", "schedule", "--at", "2023-03-02T12:00:00Z"]) == 0
    (tmp_path / "schedule.json").write_text(capsys.readouterr().out)
    assert main(["local", "invoke", "price-collector", "--event", str(tmp_path / "schedule.json"),
                 "--replay", f"coinbase={replay}", "--replay", f"kraken={shared_file(REPLAY.replace('coinbase', 'kraken'))}"]) == 0
    collected = json.loads(capsys.readouterr().out)
    assert collected["results"][0]["symbol"] == "BTC-USD" and collected["results"][0]["price"] > 0, collected
    for kind in KINDS:  # every sample is valid JSON for its target, built on the stored price
        assert main(["local", "generate-event", kind, "--at", "2023-03-02T12:00:00Z"]) == 0
        (tmp_path / f"{kind}.json").write_text(capsys.readouterr().out)
    assert main(["local", "invoke", "risk-manager", "--event", str(tmp_path / "check-risk.json")]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["approved"] is False and any(r.startswith("confidence:") for r in decision["reasons"])
    assert main(["local", "run", "--replay", replay, "--ticks", "6", "--from", "2023-03-03T00:00:00Z", *LOOSE]) == 0
    out = capsys.readouterr().out
    assert f"using the local emulator at {running_emulator.endpoint}" in out
    assert "summary (dev stack, the stack's settings, paper, 6 decisions" in out
    assert main(["local", "wallet", "--json"]) == 0
    wallet = json.loads(capsys.readouterr().out)
    assert wallet["symbol"] == "BTC-USD" and wallet["last_price"] > 0
    assert main(["local", "trades", "--json"]) == 0
    trades = json.loads(capsys.readouterr().out)["trades"]
    assert all(t["mode"] == "paper" for t in trades)
    assert main(["local", "logs", "--tail", "0", "--json"]) == 0
    logs = json.loads(capsys.readouterr().out)
    functions = {r["function"] for r in logs}
    assert {"price-collector", "ml-predictor", "risk-manager", "prediction-evaluator"} <= functions
    assert any(r["message"] == "risk decision" for r in logs)
    assert main(["local", "logs", "risk-manager", "--tail", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["time", "function", "level", "message"] and len(table) == 4


def store_price(tmp_path, at: str, price: float = 23_456.0) -> float:
    """Collect one price at `at` from two tiny replayed venues (dev needs two sources)."""
    from datetime import datetime, timedelta

    end = datetime.fromisoformat(at.replace("Z", "+00:00"))
    rows = ["timestamp,open,high,low,close,volume"]
    for minute in range(10, 0, -1):
        stamp = (end - timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(f"{stamp},{price},{price},{price},{price},1")
    venue = tmp_path / f"venue-{end:%H%M}.csv"
    venue.write_text("\n".join(rows) + "\n")
    assert main(["local", "invoke", "price-collector", "--at", at, "--replay", f"a={venue}",
                 "--replay", f"b={venue}"]) == 0
    return price


def test_env_vars_file_changes_a_functions_behaviour(running_emulator, home, tmp_path, capsys):
    store_price(tmp_path, "2023-03-02T12:00:00Z")
    capsys.readouterr()
    assert main(["local", "generate-event", "check-risk", "--at", "2023-03-02T12:00:00Z"]) == 0
    event = tmp_path / "check-risk.json"
    event.write_text(capsys.readouterr().out)
    overrides = tmp_path / "env.json"
    overrides.write_text(json.dumps({"Parameters": {"POWERTOOLS_LOG_LEVEL": "DEBUG", "NOT_MINE": "x"},
                                     "btc-trader-dev-risk-manager": {"BTC_TRADER_RISK_THRESHOLD": "0.5",
                                                                     "BTC_TRADER_BUY_THRESHOLD_PCT": "0.3"}}))
    assert main(["local", "invoke", "risk-manager", "--event", str(event), "--env-vars", str(overrides)]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert not any(r.startswith(("confidence:", "hold:")) for r in decision["reasons"]), decision["reasons"]
    overrides.write_text(json.dumps({"risk-manager": {"BTC_TRADER_RISK_TRESHOLD": "0.5"}}))
    assert main(["local", "invoke", "risk-manager", "--event", str(event), "--env-vars", str(overrides)]) == 2
    assert "risk-manager has no variable BTC_TRADER_RISK_TRESHOLD" in capsys.readouterr().err
    overrides.write_text(json.dumps({"risk-managr": {}}))
    assert main(["local", "invoke", "risk-manager", "--event", str(event), "--env-vars", str(overrides)]) == 2
    assert "unknown function 'risk-managr'" in capsys.readouterr().err
    overrides.write_text("{not json")
    assert main(["local", "invoke", "risk-manager", "--event", str(event), "--env-vars", str(overrides)]) == 2
    assert "malformed JSON" in capsys.readouterr().err


def test_lambda_api_serves_boto3_and_reports_errors_like_lambda(running_emulator, home):
    state = running_emulator
    with emulator.aws_environment(state), LocalLambdaServer(state) as server:
        lam = boto3.client("lambda", endpoint_url=server.endpoint, region_name=state.region)
        name = state.names.function("ml-predictor")
        reply = lam.invoke(FunctionName=name, Payload=json.dumps(
            {"symbol": "BTC-USD", "execution_id": "api-1", "requested_at": "2020-01-01T00:00:00Z"}))
        body = json.loads(reply["Payload"].read())
        assert "FunctionError" not in reply and body["status"] == "insufficient_history"
        reply = lam.invoke(FunctionName="risk-manager", Payload=json.dumps({"symbol": "BTC-USD"}))
        assert reply["FunctionError"] == "Unhandled"
        assert json.loads(reply["Payload"].read())["errorType"]
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            lam.invoke(FunctionName="no-such-function", Payload=b"{}")
        # The emulator's own Lambda API (used by its state machine) forwards to this server.
        via_emulator = client(state, "lambda").invoke(FunctionName=f"arn:aws:lambda:{state.region}:123456789012:function:{name}",
                                                      Payload=json.dumps({"symbol": "BTC-USD", "execution_id": "api-2",
                                                                          "requested_at": "2020-01-01T00:00:00Z"}))
        assert json.loads(via_emulator["Payload"].read())["status"] == "insufficient_history"
        assert server.invocations == 3  # the unknown function never reached a handler
    # Once it stops, the emulator says how to start one instead of pretending.
    assert lambda_registry.registered_lambda_server(state.port) is None
    reply = client(state, "lambda").invoke(FunctionName=state.names.function("ml-predictor"), Payload=b"{}")
    assert reply["FunctionError"] == "Unhandled"
    assert "btc-trader local start-lambda" in json.loads(reply["Payload"].read())["errorMessage"]


def test_start_lambda_refuses_a_port_in_use(running_emulator, home, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["local", "start-lambda", "--port", str(port)]) == 2
    assert f"cannot serve the Lambda API on 127.0.0.1:{port}" in capsys.readouterr().err


def test_bad_input_gets_one_line_errors(running_emulator, home, tmp_path, capsys):
    assert main(["local", "invoke", "price-colector"]) == 2
    assert "unknown function 'price-colector'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"symbol": ')
    assert main(["local", "invoke", "ml-predictor", "--event", str(bad)]) == 2
    assert "malformed JSON at line 1" in capsys.readouterr().err
    assert main(["local", "invoke", "trade-executor"]) == 2
    assert "local generate-event execute" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: the kinds are listed in the usage line
        main(["local", "generate-event", "tick"])
    assert "invalid choice: 'tick'" in capsys.readouterr().err
    assert main(["local", "logs", "nobody"]) == 2
    assert "unknown function 'nobody'" in capsys.readouterr().err
    unsorted = tmp_path / "unsorted.csv"
    unsorted.write_text("timestamp,open,high,low,close,volume\n2024-01-01T00:01:00Z,1,1,1,1,1\n"
                        "2024-01-01T00:00:00Z,1,1,1,1,1\n")
    assert main(["local", "run", "--replay", str(unsorted), "--ticks", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    columns = tmp_path / "columns.csv"
    columns.write_text("time,price\n2024-01-01T00:00:00Z,1\n")
    assert main(["local", "run", "--replay", str(columns), "--ticks", "2"]) == 2
    assert "column" in capsys.readouterr().err


def test_offline_run_says_so_and_uses_labelled_synthetic_prices(home):
    lines = []
    summary = local_run(None, 3, online=lambda: False, emit=lines.append)
    assert "the network is unreachable" in lines
    assert any("SYNTHETIC price series" in line for line in lines)
    assert summary.market.startswith("SYNTHETIC") and any("SYNTHETIC" in n for n in summary.notes)
    assert summary.executions == {"SUCCEEDED": 3}


def test_failing_history_falls_back_to_synthetic_too(home):
    from btc_trader.adapters.price_sources.base import SourceError

    def geo_blocked(exchange, start, end):
        raise SourceError(exchange, "HTTP 451: Binance refuses this location")

    lines = []
    summary = local_run(None, 1, online=lambda: True, fetch_history=geo_blocked, emit=lines.append)
    assert sum("HTTP 451" in line for line in lines) == 2  # binance, then binanceus
    assert summary.market.startswith("SYNTHETIC")


def test_dead_emulator_is_reported(home, capsys):
    from tests.local.conftest import free_port

    port = free_port()
    state, _ = emulator.start("dev", port)
    import os
    import signal

    os.killpg(state.pid, signal.SIGKILL)
    os.waitpid(state.pid, 0)
    assert main(["local", "status", "--port", str(port)]) == 0
    assert f"dead: stack dev on port {port}" in capsys.readouterr().out
    assert main(["local", "trades", "--port", str(port)]) == 2
    assert "no local emulator is running on port" in capsys.readouterr().err
    emulator.stop(port)


@responses.activate  # every venue call is refused in-process: tests never reach an exchange
def test_live_run_reports_failing_venues_and_goes_on(home):
    from btc_trader.domain.candles import Candle

    now = 1_700_000_000 - 1_700_000_000 % 300
    history = [Candle(now - 60 * i, 30_000.0, 30_010.0, 29_990.0, 30_000.0 + (i % 7), 1.0) for i in range(700, 0, -1)]
    lines = []
    summary = local_run(None, 2, online=lambda: True, fetch_history=lambda exchange, start, end: history,
                        emit=lines.append, tick_seconds=0, clock=lambda: now)
    assert summary.market.startswith("live (") and summary.replay == "live"
    assert summary.failures == {"price-collector": 2}
    assert sum("price-collector FAILED: CollectionFailedError" in line for line in lines) == 2
    assert summary.executions == {"SUCCEEDED": 2} and not summary.trades


def test_generated_samples_come_from_the_emulator_and_the_stacks_rules(own_emulator, tmp_path, capsys):
    at = "2023-04-05T10:00:00Z"
    assert main(["local", "generate-event", "check-risk", "--at", at]) == 2
    err = capsys.readouterr().err
    assert "no price of BTC-USD stored" in err and f"local invoke price-collector --at {at}" in err
    price = store_price(tmp_path, at, 28_123.5)
    capsys.readouterr()
    samples = {}
    for kind in ("check-risk", "execute", "notify"):
        assert main(["local", "generate-event", kind, "--at", at]) == 0
        samples[kind] = json.loads(capsys.readouterr().out)
        (tmp_path / f"{kind}.json").write_text(json.dumps(samples[kind]))
    prediction = samples["check-risk"]["prediction"]
    assert prediction["current_price"] == price and prediction["price_age_s"] == 0.0  # what the collector stored
    assert samples["execute"]["risk"]["approved"] is True and samples["execute"]["risk"]["action"] == "BUY"
    assert samples["execute"]["risk"]["notional_usd"] <= 100  # dev's maxTradeAmount
    # The stack's own risk manager approves the execute sample's prediction...
    check = {k: v for k, v in samples["execute"].items() if k != "risk"}
    (tmp_path / "check.json").write_text(json.dumps(check))
    assert main(["local", "invoke", "risk-manager", "--event", str(tmp_path / "check.json")]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert decided["approved"] is True
    for key in ("action", "quantity_btc", "notional_usd", "reference_price", "trade_id"):
        assert samples["execute"]["risk"][key] == decided[key], key  # the sample is what the stack decides
    # ...and the executor (which takes only the decision the risk manager stored for this execution,
    # under its lease) books it at the stored price plus dev's slippage, never an invented one.
    (tmp_path / "execute.json").write_text(json.dumps({**check, "risk": decided}))
    assert main(["local", "invoke", "trade-executor", "--event", str(tmp_path / "execute.json")]) == 0
    trade = json.loads(capsys.readouterr().out)
    assert trade["status"] == "FILLED" and trade["avg_price"] == pytest.approx(price * 1.0005, rel=1e-6)
    assert samples["notify"]["trade"]["avg_price"] == pytest.approx(trade["avg_price"], abs=0.01)
    assert main(["local", "generate-event", "check-risk", "--at", at, "--symbol", "ETH-USD"]) == 2
    assert "does not trade ETH-USD" in capsys.readouterr().err


def test_handler_errors_reach_the_logs_with_their_traceback(running_emulator, home, tmp_path, capsys):
    event = tmp_path / "bad.json"
    event.write_text(json.dumps({"symbol": "BTC-USD"}))  # CheckRisk's input without a prediction
    assert main(["local", "invoke", "risk-manager", "--event", str(event)]) == 1
    capsys.readouterr()
    assert main(["local", "logs", "risk-manager", "--level", "ERROR", "--tail", "0", "--width", "400"]) == 0
    out = capsys.readouterr().out
    assert "Unhandled exception in risk-manager" in out and "Traceback (most recent call last)" in out
    assert main(["local", "logs", "--level", "ERROR", "--json", "--tail", "0"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records and {r["level"] for r in records} <= {"ERROR", "CRITICAL"}
    assert main(["local", "logs", "--level", "INFO", "--json", "--tail", "0"]) == 0
    assert {"INFO", "ERROR"} <= {r["level"] for r in json.loads(capsys.readouterr().out)}
    # The start-lambda console shows it too (the server echoes each handler's log).
    import io

    echo = io.StringIO()
    with emulator.aws_environment(running_emulator), LocalLambdaServer(running_emulator, echo=echo) as server:
        lam = boto3.client("lambda", endpoint_url=server.endpoint, region_name=running_emulator.region)
        reply = lam.invoke(FunctionName="risk-manager", Payload=json.dumps({"symbol": "BTC-USD"}))
    assert reply["FunctionError"] == "Unhandled"
    assert "Unhandled exception in risk-manager" in echo.getvalue() and "Traceback" in echo.getvalue()
