"""order_reconciler handler on moto, with the prod (live) stack's environment and the simulated
Binance account: unresolved orders, the UnresolvedOrders metric, the block and its alert."""

import json
from decimal import Decimal as D

import boto3
import responses
from moto import mock_aws
from moto.sns.models import sns_backends

from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.contracts import RiskResult
from btc_trader.stack.environment import ORDER_RECONCILER, function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from btc_trader.storage_schema import TABLES
from tests.aws_fakes import FakeLambdaContext, create_table, emf_records, metric_values
from tests.exchange_sim import BinanceSim, OrderFault

ACCOUNT, REGION = "123456789012", "us-east-1"
PREDICTION = {"status": "ok", "as_of": "2023-03-11T12:00:00Z", "current_price": 20_000.0, "price_age_s": 10,
              "predicted_price": 20_300.0, "horizon_minutes": 60, "direction": "up", "confidence": 0.9, "models": []}


def setup(stack: str, monkeypatch):
    names = ResourceNames(stack, ACCOUNT, REGION)
    settings = load_stack_file(stack)
    for key, value in function_environments(settings, names)[ORDER_RECONCILER].items():
        monkeypatch.setenv(key, value)
    for spec in TABLES:
        create_table(spec, names.table(spec.role))
    topic = boto3.client("sns").create_topic(Name=names.alerts_topic)["TopicArn"]
    if settings.enable_real_trading:
        boto3.client("secretsmanager").create_secret(
            Name=settings.exchange.secret_name, SecretString=json.dumps({"apiKey": "k", "secret": "s"}))
    from aws_lambda_powertools.utilities import parameters

    from functions import order_reconciler

    order_reconciler._config.cache_clear()
    order_reconciler._service.cache_clear()
    order_reconciler.metrics.clear_metrics()
    parameters.clear_caches()
    return names, topic, order_reconciler


def test_paper_stack_counts_and_reports_nothing_unresolved(monkeypatch, capsys):
    with mock_aws():
        _, _, handler = setup("dev", monkeypatch)
        result = handler.lambda_handler({"time": "2023-03-11T12:00:00Z", "detail": {}}, FakeLambdaContext())
    assert result["mode"] == "paper" and result["results"] == [
        {"symbol": "BTC-USD", "unresolved": [], "resolved": [], "blocked_reason": None, "agrees": None}]
    assert [v for _, v in metric_values(emf_records(capsys.readouterr().out), "UnresolvedOrders")] == [0.0]


def test_live_stack_tracks_an_unknown_order_then_blocks_and_alerts_on_a_difference(monkeypatch, capsys):
    exchange_id = load_stack_file("prod").exchange.id
    sim = BinanceSim.for_exchange(exchange_id, balances={}, asks=[(D("20000"), D("5"))], bids=[(D("19990"), D("5"))])
    sim.balances[sim.quote] = D("1000")
    with mock_aws(), responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        names, topic, handler = setup("prod", monkeypatch)
        execution = handler._service().execution
        execution.live.exchange.enableRateLimit = False
        execution.sleep = lambda s: None
        sim.faults.append(OrderFault("-1007", placed=True, visible_after=10**6))
        risk = RiskResult(approved=True, action="BUY", quantity_btc=0.004, notional_usd=81, reasons=[], risk_score=0.1)
        from tests.services.test_live_execution import execute_once

        trade = execute_once(execution, "BTC-USD", "exec-x", risk, 20_000.0, 1_678_536_000)
        assert trade.status == "UNKNOWN"
        event = {"time": "2023-03-11T12:05:00Z", "detail": {}}
        first = handler.lambda_handler(event, FakeLambdaContext())
        assert first["results"][0]["unresolved"] == [trade.trade_id]
        assert metric_values(emf_records(capsys.readouterr().out), "UnresolvedOrders")[0][1] == 1.0
        sim.orders[-1].hidden_queries = 0  # it shows up: booked with its fee, then the books differ
        sim.balances[sim.quote] -= D("50")
        second = handler.lambda_handler({**event, "time": "2023-03-11T12:10:00Z"}, FakeLambdaContext())
        store = DynamoDBTradingStore(names.table("trades"), names.table("trading-state"))
        assert store.get_trade(trade.trade_id)["status"] == "FILLED"
        assert second["results"][0]["resolved"] == [trade.trade_id]
        assert second["results"][0]["blocked_reason"].startswith("ledger and exchange differ beyond dust")
        assert metric_values(emf_records(capsys.readouterr().out), "UnresolvedOrders")[0][1] == 0.0
        (sent,) = sns_backends[ACCOUNT][REGION].topics[topic].sent_notifications
        assert "blocked" in sent[2] and sim.quote in sent[1] and "trading reconcile" in sent[1]
    assert len(sim.posted_orders()) == 1
