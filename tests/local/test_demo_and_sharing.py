"""The demo trades (real candles and the synthetic series), and an emulator is safe to share."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from btc_trader.cli import main
from btc_trader.local import emulator
from btc_trader.local.demo import REAL_FROM, real_files, run_demo
from btc_trader.local.lambda_server import LocalLambdaServer
from btc_trader.local.run import SYNTHETIC_END, local_run
from tests.conftest import SHARED_DATA
from tests.local.conftest import free_port


def _check_demo(demo, lines):
    own, profile = demo.runs
    assert own.profile is None and profile.profile == "demo"
    assert not (own.trades.get("BUY") and own.trades.get("SELL")), "the stack's own settings refuse (no edge)"
    assert any("the stack's own settings filled" in line and "deciding rules" in line for line in lines)
    assert any(line.startswith("=== DEMONSTRATION PROFILE 'demo'") for line in lines)
    assert profile.trades["BUY"] >= 1 and profile.trades["SELL"] >= 1, profile.trades
    assert demo.traded is profile
    # Each refused decision is counted once, by its deciding rule.
    for run in demo.runs:
        assert sum(run.rejections.values()) + sum(run.trades.values()) == run.ticks
    # The collector rejected the de-pegged venue.
    (result,) = demo.collection["results"]
    assert any("outlier" in why for why in result["sources_rejected"].values())
    headers = [line for line in lines if line.startswith("decision time")]
    assert len(headers) == 2 and "outcome" in headers[0]


def test_demo_trades_on_the_synthetic_series_and_is_deterministic(own_emulator, tmp_path):
    lines = []
    demo = run_demo(tmp_path / "no-data-here", own_emulator.port, emit=lines.append, report=lambda s: None)
    assert demo.market.startswith("SYNTHETIC")
    _check_demo(demo, lines)
    own, profile = demo.runs
    assert own.first_decision < own.last_decision < profile.first_decision  # the profile's own window
    assert profile.last_decision < iso_end()
    # Deterministic: the same series, the same decisions, the same wallet (a recorded run).
    first_run = [line for line in lines if line[:4] == "2023"]
    assert profile.trades == {"BUY": 14, "SELL": 9}, profile.trades
    assert profile.wallet == {"usd": 9482.68, "btc": 0.0243324, "fees_paid_usd": 2.29, "realised_pnl_usd": -16.57}
    assert len(first_run) == 96


def iso_end() -> str:
    from btc_trader.local.run import iso

    return iso(SYNTHETIC_END)


def test_demo_trades_on_the_real_candles(own_emulator):
    if real_files(SHARED_DATA) is None:
        pytest.skip(f"real candles not in {SHARED_DATA}")
    lines = []
    demo = run_demo(SHARED_DATA, own_emulator.port, emit=lines.append, report=lambda s: None)
    assert demo.market == "real candles"
    assert demo.runs[0].first_decision == REAL_FROM
    _check_demo(demo, lines)


def test_a_second_run_on_the_same_emulator_is_refused(running_emulator, home, capsys):
    holder = threading.Event()
    release = threading.Event()

    def hold():
        with emulator.run_lock(running_emulator):
            holder.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holder.wait(10)
        assert main(["local", "run", "--synthetic", "--ticks", "1", "--port", str(running_emulator.port)]) == 2
        err = capsys.readouterr().err
        assert f"the local emulator on port {running_emulator.port} is busy: local run (pid" in err
        assert "one run at a time" in err and len(err.strip().splitlines()) == 1
    finally:
        release.set()
        thread.join()
    # Once the first run is over the emulator is free again.
    with emulator.run_lock(running_emulator):
        pass


def test_every_command_resolves_the_emulator_the_same_way(running_emulator, home, capsys):
    other, _ = emulator.start("dev", free_port())
    try:
        for command in (["local", "wallet"], ["local", "trades"], ["local", "logs"], ["local", "down"],
                        ["local", "invoke", "ml-predictor"], ["local", "run", "--synthetic", "--ticks", "1"]):
            assert main(command) == 2, command
            err = capsys.readouterr().err
            assert "2 local emulators are running" in err and f"port {other.port}" in err, (command, err)
            assert f"port {running_emulator.port}" in err and "--port" in err
        assert main(["local", "wallet", "--port", str(other.port), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["symbol"] == "BTC-USD"
    finally:
        assert main(["local", "down", "--port", str(other.port)]) == 0
        capsys.readouterr()
    # Alone again: `local down` would find it without --port, like every other command.
    assert emulator.find_running() == running_emulator
    assert main(["local", "wallet", "--symbol", "ETH-USD"]) == 2
    assert "stack dev does not trade ETH-USD" in capsys.readouterr().err
    assert main(["local", "trades", "--symbol", "ETH-USD"]) == 2
    capsys.readouterr()
    assert main(["local", "logs", "--stack", "staging"]) == 2
    assert "staging" in capsys.readouterr().err
    assert main(["local", "logs", "--stack", "prod"]) == 2
    assert "holds stack 'dev', not 'prod'" in capsys.readouterr().err


def test_down_without_port_finds_the_one_emulator(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BTC_TRADER_HOME", str(tmp_path))  # a home where it is the only emulator
    port = free_port()
    emulator.start("dev", port)
    assert main(["local", "down"]) == 0
    assert f"local emulator on port {port} stopped" in capsys.readouterr().out
    assert emulator.read_state(port) is None


def test_unnamed_execution_gets_its_id_from_the_context_object(running_emulator, home):
    state = running_emulator
    sfn = boto3.client("stepfunctions", endpoint_url=state.endpoint, region_name=state.region,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    arn = emulator.state_machine_arn(state)
    with emulator.aws_environment(state), LocalLambdaServer(state):
        arns = [sfn.start_execution(stateMachineArn=arn, input=json.dumps({"symbol": "BTC-USD"}))["executionArn"]
                for _ in range(2)]  # the second unnamed start is not "ExecutionAlreadyExists"
        assert len(set(arns)) == 2
        for execution_arn in arns:
            deadline = time.monotonic() + 60
            while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert described["status"] == "SUCCEEDED", described
            output = json.loads(described["output"])
            # The workflow's execution id is $$.Execution.Name: the generated name, never null.
            assert execution_arn.endswith(":" + output["execution_id"]) and output["execution_id"]


def test_offline_run_on_the_synthetic_series_is_labelled(home):
    lines = []
    summary = local_run(None, 1, synthetic=True, emit=lines.append)
    assert summary.market.startswith("SYNTHETIC") and any("SYNTHETIC" in note for note in summary.notes)


def test_logs_follow_filter_and_archive(tmp_path, monkeypatch, capsys):
    from btc_trader.local import logs

    monkeypatch.setenv("BTC_TRADER_HOME", str(tmp_path))
    path = logs.log_path("dev", "risk-manager")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"level": "INFO", "message": "old", "timestamp": "2026-01-01 00:00:00,000+0000"}) + "\n")
    seen, rounds = [], iter(range(3))

    def keep_going():
        step = next(rounds, None)
        if step == 1:  # records written while following, one of them half-written at first
            with path.open("a") as file:
                file.write(json.dumps({"level": "ERROR", "message": "boom", "timestamp": "2026-01-01 00:00:01,000+0000"})
                           + "\n" + json.dumps({"level": "DEBUG", "message": "quiet"}) + "\n{\"level\": \"ERR")
        return step is not None

    logs.follow_logs("dev", ["risk-manager"], seen.append, level="WARNING", keep_going=keep_going,
                     sleep=lambda _s: None)
    assert [r.message for r in seen] == ["boom"]  # nothing from before, nothing below WARNING
    assert [r.message for r in logs.read_logs("dev", ["risk-manager"], level="ERROR")] == ["boom"]
    assert [r.message for r in logs.read_logs("dev", ["risk-manager"], level="INFO",
                                              since="2026-01-01T00:00:00.500+00:00")] == ["boom"]
    # A stopped emulator's logs are history: archived, never read as current.
    port = free_port()
    emulator.start("dev", port)
    assert main(["local", "down"]) == 0
    assert "logs moved to" in capsys.readouterr().out
    assert not logs.log_path("dev", "risk-manager").exists()
    assert list(logs.archive_dir().glob("dev-*/risk-manager.jsonl"))
