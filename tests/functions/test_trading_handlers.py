"""risk_manager and trade_executor handlers on moto: kill switch parameter, idempotency, metrics."""

import boto3
import pytest
from moto import mock_aws

from btc_trader.contracts import RiskResult, TradeResult
from btc_trader.stack.environment import kill_switch_parameter
from btc_trader.stack.naming import ResourceNames
from tests.aws_fakes import (
    FakeLambdaContext,
    emf_records,
    measure_values,
    metric_values,
    trading_handlers,
)

NAMES = ResourceNames("dev", "123456789012", "us-east-1")
PREDICTION = {"status": "ok", "as_of": "2023-03-11T12:00:00Z", "current_price": 20_000.0, "price_age_s": 10,
              "predicted_price": 20_300.0, "horizon_minutes": 60, "direction": "up", "confidence": 0.9, "models": []}
STATE = {"symbol": "BTC-USD", "execution_id": "exec-7", "requested_at": "2023-03-11T12:00:00Z", "prediction": PREDICTION}


@pytest.fixture
def handlers(monkeypatch):
    with mock_aws():
        yield trading_handlers(monkeypatch, NAMES)


def test_approve_then_execute_once(handlers, capsys, caplog):
    risk_manager, trade_executor = handlers
    risk = RiskResult.model_validate(risk_manager.lambda_handler(STATE, FakeLambdaContext()))
    assert risk.approved and risk.action == "BUY" and risk.notional_usd == 100
    records = emf_records(capsys.readouterr().out)
    assert measure_values(caplog.records, "RiskScore")[0][1] == pytest.approx(risk.risk_score)
    assert metric_values(records, "DrawdownPct") == [({"service": "risk-manager"}, 0.0)]  # flat, at its peak
    event = {**STATE, "risk": risk.model_dump(mode="json")}
    first = TradeResult.model_validate(trade_executor.lambda_handler(event, FakeLambdaContext()))
    second = TradeResult.model_validate(trade_executor.lambda_handler(event, FakeLambdaContext()))
    assert first == second and first.status == "FILLED" and first.mode == "paper"
    assert boto3.client("dynamodb").scan(TableName=NAMES.table("trades"))["Count"] == 1
    assert boto3.client("dynamodb").scan(TableName=NAMES.table("idempotency"))["Count"] == 1
    records = emf_records(capsys.readouterr().out)
    assert measure_values(caplog.records, "TradeSuccessRate")[0][1] == 100.0
    (dims, _), *_ = measure_values(caplog.records, "TradesExecuted")
    assert dims["mode"] == "paper" and dims["side"] == "BUY"
    assert measure_values(caplog.records, "PortfolioValue")[0][1] == pytest.approx(first.wallet.equity_usd)


def test_manual_kill_switch_stops_trading(handlers, capsys, caplog):
    risk_manager, _ = handlers
    boto3.client("ssm").put_parameter(Name=kill_switch_parameter(NAMES), Value="on", Type="String", Overwrite=True)
    risk = risk_manager.lambda_handler(STATE, FakeLambdaContext())
    assert not risk["approved"] and any("manual_kill_switch" in r for r in risk["reasons"])
    records = emf_records(capsys.readouterr().out)
    assert [value for _, value in metric_values(records, "KillSwitchEngaged")] == [0]  # the drawdown switch; the manual one is SSM
    assert {d["rule"] for d, _ in measure_values(caplog.records, "RiskRejections")} == {"manual_kill_switch"}


def test_unreadable_kill_switch_fails_safe(handlers):
    risk_manager, _ = handlers
    boto3.client("ssm").delete_parameter(Name=kill_switch_parameter(NAMES))
    risk = risk_manager.lambda_handler(STATE, FakeLambdaContext())
    assert not risk["approved"]


def test_executor_refuses_unapproved_intents(handlers):
    _, trade_executor = handlers
    risk = {"approved": False, "action": "HOLD", "quantity_btc": 0, "notional_usd": 0, "reasons": ["hold: x"],
            "risk_score": 0.1}
    with pytest.raises(Exception, match="not approved"):
        trade_executor.lambda_handler({**STATE, "execution_id": "exec-8", "risk": risk}, FakeLambdaContext())


def test_risk_manager_meters_drawdown(handlers, capsys):
    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.domain.risk import RiskState
    from btc_trader.domain.wallet import PaperWallet

    risk_manager, _ = handlers
    store = DynamoDBTradingStore(NAMES.table("trades"), NAMES.table("trading-state"))
    store.save_state("BTC-USD", PaperWallet(usd=9_400, peak_equity_usd=10_000), RiskState(), 0)
    risk_manager.lambda_handler(STATE, FakeLambdaContext())
    records = emf_records(capsys.readouterr().out)
    ((dims, drawdown),) = metric_values(records, "DrawdownPct")
    assert drawdown == pytest.approx(6.0) and set(dims) == {"service"}
    assert metric_values(records, "KillSwitchEngaged")[0][1] == 0


def test_a_refusal_prediction_reaching_the_executor_is_a_clear_refusal(handlers):
    risk_manager, trade_executor = handlers
    risk = risk_manager.lambda_handler(STATE, FakeLambdaContext())
    refusal = {"status": "no_model", "reason": "every model failed", "as_of": "2023-03-11T12:00:00Z",
               "horizon_minutes": 60}
    with pytest.raises(Exception, match=r"the prediction is a refusal \(no_model: every model failed\)"):
        trade_executor.lambda_handler({**STATE, "prediction": refusal, "risk": risk}, FakeLambdaContext())
    assert boto3.client("dynamodb").scan(TableName=NAMES.table("trades"))["Count"] == 0, "no PENDING written"


def test_risk_manager_refuses_a_price_the_stack_never_stored(handlers):
    risk_manager, _ = handlers
    bogus = {**STATE, "prediction": {**PREDICTION, "current_price": 1e-6, "predicted_price": 1.015e-6}}
    risk = risk_manager.lambda_handler(bogus, FakeLambdaContext())
    assert not risk["approved"] and any(r.startswith("market_price:") for r in risk["reasons"])
    assert risk["quantity_btc"] < 1  # sized at the stored price, never 100,000,000 BTC


def test_live_mode_refuses_a_run_clock_far_from_the_wall_clock(handlers, monkeypatch):
    risk_manager, _ = handlers
    monkeypatch.setenv("BTC_TRADER_MODE", "live")
    risk_manager._config.cache_clear()
    risk_manager._service.cache_clear()
    risk = risk_manager.lambda_handler(STATE, FakeLambdaContext())  # requested_at is in 2023
    assert not risk["approved"] and any(r.startswith("clock: requested_at is ") for r in risk["reasons"])


def test_a_run_refused_by_the_lease_reports_the_rule_and_no_drawdown(handlers, capsys, caplog):
    risk_manager, _ = handlers
    assert risk_manager.lambda_handler(STATE, FakeLambdaContext())["approved"]  # exec-7 holds the lease
    capsys.readouterr()
    caplog.clear()
    second = risk_manager.lambda_handler({**STATE, "execution_id": "exec-9"}, FakeLambdaContext())
    assert not second["approved"] and second["reasons"][0].startswith("lease: BTC-USD is held by execution exec-7")
    records = emf_records(capsys.readouterr().out)
    assert {d["rule"] for d, _ in measure_values(caplog.records, "RiskRejections")} == {"lease"}
    assert metric_values(records, "DrawdownPct") == [] and metric_values(records, "KillSwitchEngaged") == []
