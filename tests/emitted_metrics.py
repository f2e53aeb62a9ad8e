"""Which CloudWatch metrics the handlers really emit, found by running them (moto, no network).

Every function of a stack runs with the environment its Pulumi component gives it, after a cold
start (its module re-imported under that environment, as in its own Lambda container), through
the paths that emit metrics: a collection with a failing venue and one with too few venues; the
enabled models (Bedrock and SageMaker answered by botocore's Stubber, the technical model for
real) and the ensemble; the evaluator scoring those predictions; the risk manager approving and
rejecting; the executor buying and selling (paper, or live against Binance's documented bodies
through `responses`). The EMF blobs they print are the evidence: (namespace, name, dimensions).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import numpy as np
import responses
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
from btc_trader.domain.candles import Candle
from btc_trader.local.environ import patched_environ
from btc_trader.stack.environment import (
    ML_PREDICTOR,
    ORDER_RECONCILER,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
    TRADE_EXECUTOR,
    function_environments,
    kill_switch_parameter,
)
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import StackSettings
from btc_trader.storage_schema import TABLES
from btc_trader.telemetry import MEASURE_FIELD, VALUE_FIELD
from tests.aws_fakes import FakeLambdaContext, create_table, emf_records
from tests.conftest import load_fixture

MODULES = {
    PRICE_COLLECTOR: "functions.price_collector",
    ML_PREDICTOR: "functions.ml_predictor",
    PREDICTION_EVALUATOR: "functions.prediction_evaluator",
    RISK_MANAGER: "functions.risk_manager",
    TRADE_EXECUTOR: "functions.trade_executor",
    ORDER_RECONCILER: "functions.order_reconciler",
}
BASE_PRICE = 20_000.0
SCORED_PREDICTIONS = 4
BINANCE = "https://api.binance.com/api/v3"
# The live venue's REST root, by ccxt id (Binance.US serves the same API as binance.com).
EXCHANGE_API = {"binance": BINANCE, "binanceus": "https://api.binance.us/api/v3"}
# The venues' documented example responses were captured around this time.
VENUE_EXAMPLES_AT = int(datetime(2024, 3, 25, 8, 45, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Emitted:
    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]

    @property
    def service(self) -> str | None:
        return dict(self.dimensions).get("service")


@dataclass(frozen=True)
class Logged:
    """A log measure a handler wrote (btc_trader.telemetry): who wrote it, its name, its fields."""

    service: str
    name: str
    fields: frozenset[str]


def logged_in(text: str) -> set[Logged]:
    """Every log measure in the Powertools JSON lines of `text`."""
    found = set()
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{") or f'"{MEASURE_FIELD}"' not in line:
            continue
        record = json.loads(line)
        if MEASURE_FIELD in record and VALUE_FIELD in record:
            found.add(Logged(record["service"], record[MEASURE_FIELD], frozenset(record)))
    return found


def emitted_in(text: str) -> set[Emitted]:
    """Every (namespace, metric, dimensions) in the EMF blobs of `text`."""
    found = set()
    for record in emf_records(text):
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = frozenset((key, str(record[key])) for key in dimension_set)
                for metric in directive["Metrics"]:
                    found.add(Emitted(directive["Namespace"], metric["Name"], dims))
    return found


@dataclass
class Function:
    """A handler module loaded in its own environment, like one Lambda container."""

    module: ModuleType
    env: dict[str, str]


@contextlib.contextmanager
def cold_start(role: str, env: dict[str, str]) -> Iterator[Function]:
    """The handler module imported afresh under its function's environment, as Lambda does;
    re-imported under the previous environment afterwards so other tests see it unchanged."""
    module = importlib.import_module(MODULES[role])
    with patched_environ(env):
        module = importlib.reload(module)
    try:
        yield Function(module, env)
    finally:
        module.metrics.clear_metrics()
        importlib.reload(module)


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _price(t: int) -> float:
    return BASE_PRICE * (1 + 0.004 * np.sin(t / 7_200))


class HandlerRun:
    """One stack's functions on one moto account; `emitted` gathers what they printed."""

    def __init__(self, settings: StackSettings, names: ResourceNames):
        self.settings, self.names = settings, names
        self.envs = function_environments(settings, names)
        self.symbol = settings.symbols[0]
        self.bar = settings.price_collection_interval * 60
        self.output = io.StringIO()

    def invoke(self, function: Function, event: dict[str, Any]) -> Any:
        # Each call in its function's own environment: Powertools reads some of it per metric.
        # Powertools binds its log stream at import: point it at the run's output, as Lambda's
        # stdout, so the JSON log lines (log measures) are collected beside the EMF.
        handler = function.module.logger.registered_handler
        stream = handler.stream
        handler.stream = self.output
        try:
            with patched_environ(function.env), contextlib.redirect_stdout(self.output):
                return function.module.lambda_handler(event, FakeLambdaContext())
        finally:
            handler.stream = stream

    # --- the stack's resources ---------------------------------------------------------------

    def provision(self, start: int, end: int) -> None:
        for spec in TABLES:
            create_table(spec, self.names.table(spec.role))
        boto3.client("s3").create_bucket(Bucket=self.names.raw_bucket)
        boto3.client("ssm").put_parameter(Name=kill_switch_parameter(self.names), Value="off", Type="String")
        if self.settings.enable_real_trading:
            boto3.client("secretsmanager").create_secret(
                Name=self.settings.exchange.secret_name,
                SecretString=json.dumps({"apiKey": "test-api-key", "secret": "test-api-secret"}))
        candles = [Candle(t, _price(t), _price(t), _price(t), _price(t), 1.0) for t in range(start, end, self.bar)]
        DynamoDBPriceRepository(self.names.table("prices")).save_candles(
            self.symbol, candles, source="test", bar_seconds=self.bar)

    # --- the functions -----------------------------------------------------------------------

    def collect(self, at: int = VENUE_EXAMPLES_AT) -> None:
        env = {**self.envs[PRICE_COLLECTOR], "BTC_TRADER_MAX_SOURCE_STALENESS_SECONDS": str(10**9)}  # old examples
        event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
                 "time": iso(at), "detail": {}}
        with cold_start(PRICE_COLLECTOR, env) as collector, responses.RequestsMock(
                assert_all_requests_are_fired=False) as venues:
            venues.get("https://api.coingecko.com/api/v3/simple/price", json=load_fixture("coingecko_simple_price.json"))
            venues.get(f"{BINANCE}/ticker/24hr", json=load_fixture("binance_error_451_restricted_location.json"),
                       status=451)
            coinbase = load_fixture("coinbase_ticker.json")
            coinbase["price"] = "67190.10"  # the example's price is from another day than the others
            venues.get(re.compile(r"https://api\.exchange\.coinbase\.com/products/.*/ticker"), json=coinbase)
            kraken = load_fixture("kraken_ticker.json")
            kraken["result"]["XXBTZUSD"]["c"][0] = "67185.0"
            venues.get("https://api.kraken.com/0/public/Ticker", json=kraken)
            self.invoke(collector, event)
            # Every venue failing: too few sources, the run fails and Lambda would retry it.
            for url in ("https://api.coingecko.com/api/v3/simple/price", "https://api.kraken.com/0/public/Ticker"):
                venues.replace(responses.GET, url, body="<html>502 Bad Gateway</html>", status=502)
            venues.replace(responses.GET, re.compile(r"https://api\.exchange\.coinbase\.com/products/.*/ticker"),
                           body="<html>502 Bad Gateway</html>", status=502)
            with contextlib.suppress(collector.module.CollectionFailedError):
                self.invoke(collector, {**event, "time": iso(at + self.bar)})

    def predict_and_evaluate(self, first: int) -> None:
        models = self.settings.ml_models
        horizon = self.settings.prediction_horizon_minutes
        # Few scored predictions are enough to show the skill metric; the knob is not a dimension.
        predictor_env = {**self.envs[ML_PREDICTOR], "BTC_TRADER_MIN_SKILL_SAMPLES": str(SCORED_PREDICTIONS - 1),
                         # NOHISTORY-USD: configured (the predictor refuses unconfigured symbols), never collected.
                         "BTC_TRADER_SYMBOLS": json.dumps([*self.settings.symbols, "NOHISTORY-USD"])}
        times = [first + i * self.settings.trading_interval * 60 for i in range(SCORED_PREDICTIONS)]
        with cold_start(ML_PREDICTOR, predictor_env) as predictor, \
                self._stubbed_models(predictor, len(times)):  # Bedrock: one more call, throttled
            for i, at in enumerate(times):
                self.invoke(predictor, {"symbol": self.symbol, "execution_id": f"predict-{i}",
                                        "requested_at": iso(at)})
            # A symbol without history: the prediction is refused before any model is asked.
            self.invoke(predictor, {"symbol": "NOHISTORY-USD", "execution_id": "predict-refused",
                                    "requested_at": iso(times[-1])})
            if "bedrock" in self.settings.ml_models:  # one throttled Bedrock call: a model failure
                self.invoke(predictor, {"symbol": self.symbol, "execution_id": "predict-throttled",
                                        "requested_at": iso(times[-1] + 60)})
        evaluator_env = {**self.envs[PREDICTION_EVALUATOR], "BTC_TRADER_MIN_SKILL_SAMPLES": str(SCORED_PREDICTIONS - 1)}
        with cold_start(PREDICTION_EVALUATOR, evaluator_env) as evaluator:
            summary = self.invoke(evaluator, {"time": iso(times[-1] + horizon * 60 + self.bar)})
        scored = summary["results"][0]["skills"]
        assert set(scored) == set(models), f"every model is scored, got {scored}"

    @contextlib.contextmanager
    def _stubbed_models(self, predictor: Function, calls: int) -> Iterator[None]:
        """Bedrock and SageMaker answer through Stubber with their documented response shapes."""
        horizon = self.settings.prediction_horizon_minutes
        steps = horizon // self.settings.price_collection_interval
        with patched_environ(predictor.env):
            models = predictor.module._service().predictors
        with contextlib.ExitStack() as stack:
            for model in models:
                if model.name == "bedrock":
                    model.client = boto3.client("bedrock-runtime")
                    stubber = stack.enter_context(Stubber(model.client))
                    for _ in range(calls):
                        body = json.loads(json.dumps(load_fixture("bedrock_converse_response.json")))
                        body["output"]["message"]["content"] = [{"text": json.dumps(
                            {"predicted_price": BASE_PRICE * 1.002, "direction": "up", "confidence": 0.6})}]
                        body["stopReason"] = "end_turn"
                        body["usage"] = {"inputTokens": 812, "outputTokens": 64, "totalTokens": 876}
                        stubber.add_response("converse", body, {"modelId": ANY, "messages": ANY,
                                                                "inferenceConfig": ANY})
                    stubber.add_client_error("converse", "ThrottlingException", "Too many requests, please wait",
                                             http_status_code=429)
                elif model.name == "huggingface":
                    model.client = boto3.client("sagemaker-runtime")
                    stubber = stack.enter_context(Stubber(model.client))
                    for _ in range(calls + 1):
                        result = {"predictions": [{"mean": [BASE_PRICE * 1.001] * steps,
                                                   "0.1": [BASE_PRICE * 0.999] * steps,
                                                   "0.5": [BASE_PRICE * 1.001] * steps,
                                                   "0.9": [BASE_PRICE * 1.003] * steps}]}
                        payload = json.dumps(result).encode()
                        stubber.add_response(
                            "invoke_endpoint",
                            {"Body": StreamingBody(io.BytesIO(payload), len(payload)), "ContentType": "application/json"},
                            {"EndpointName": ANY, "ContentType": ANY, "Accept": ANY, "Body": ANY})
            yield

    def trade(self, at: int) -> None:
        def prediction(move_pct: float, confidence: float) -> dict[str, Any]:
            return {"status": "ok", "as_of": iso(at), "current_price": BASE_PRICE, "price_age_s": 10,
                    "predicted_price": BASE_PRICE * (1 + move_pct / 100), "horizon_minutes": 60,
                    "direction": "up" if move_pct > 0 else "down", "confidence": confidence, "models": []}

        with cold_start(RISK_MANAGER, self.envs[RISK_MANAGER]) as risk_manager, \
                cold_start(TRADE_EXECUTOR, self.envs[TRADE_EXECUTOR]) as executor, \
                self._exchange():
            # An unconvinced prediction is rejected by a rule; then a BUY and a SELL are executed.
            self.invoke(risk_manager, self._state("doubt", at, prediction(2.0, 0.05)))
            self._release_lease("doubt")
            for i, move in enumerate((2.0, -2.0)):
                state = self._state(f"trade-{i}", at + i * 60, prediction(move, 0.97))
                # A live stack's run is held against the wall clock: the run happens "now".
                with mock.patch.object(risk_manager.module, "wall_clock", lambda t=at + i * 60: t), \
                        mock.patch.object(executor.module, "wall_clock", lambda t=at + i * 60: t):
                    risk = self.invoke(risk_manager, state)
                    assert risk["approved"], f"the {'BUY' if move > 0 else 'SELL'} must be approved: {risk['reasons']}"
                    trade = self.invoke(executor, {**state, "risk": risk})
                assert trade["status"] == "FILLED", trade
                self._release_lease(f"trade-{i}")
            with cold_start(ORDER_RECONCILER, self.envs[ORDER_RECONCILER]) as reconciler:
                summary = self.invoke(reconciler, {"time": iso(at + 180), "detail": {}})
                assert summary["results"][0]["unresolved"] == [], summary

    def _release_lease(self, execution_id: str) -> None:
        """What the state machine does when an execution ends (the handlers run without it here)."""
        from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore

        DynamoDBTradingStore(self.names.table("trades"), self.names.table("trading-state")).release_lease(
            self.symbol, execution_id)

    def _state(self, execution_id: str, at: int, prediction: dict[str, Any]) -> dict[str, Any]:
        return {"symbol": self.symbol, "execution_id": execution_id, "requested_at": iso(at), "prediction": prediction}

    @contextlib.contextmanager
    def _exchange(self) -> Iterator[None]:
        """A live stack trades with the simulated Binance (or Binance.US) account (tests/exchange_sim)."""
        if not self.settings.enable_real_trading:
            yield
            return

        from decimal import Decimal

        from tests.exchange_sim import BinanceSim

        # The simulated account holds the paper starting cash, so the first live run adopts it as is.
        sim = BinanceSim.for_exchange(
            self.settings.exchange.id,
            balances={"USDT": Decimal(str(self.settings.paper_starting_cash)),
                      "USD": Decimal(str(self.settings.paper_starting_cash))},
            asks=[(Decimal(str(BASE_PRICE)), Decimal("10"))], bids=[(Decimal(str(BASE_PRICE - 10)), Decimal("10"))])
        with responses.RequestsMock(assert_all_requests_are_fired=False) as exchange:
            sim.mount(exchange)
            yield


def exchange_info(exchange_id: str) -> dict[str, Any]:
    """Binance's documented exchangeInfo; Binance.US lists the same shape with BTC quoted in USD."""
    info = load_fixture("binance_exchange_info_btcusdt.json")
    if exchange_id == "binanceus":
        for market in info["symbols"]:
            if market["quoteAsset"] == "USDT":
                market["symbol"] = market["symbol"].removesuffix("USDT") + "USD"
                market["quoteAsset"] = "USD"
    return info


def collect_emissions(settings: StackSettings, names: ResourceNames) -> set[Emitted]:
    """Run every function of the stack through its metric-emitting paths; what did they emit?"""
    return emitted_in(run_handlers(settings, names))


def collect_logged(settings: StackSettings, names: ResourceNames) -> tuple[set[Emitted], set[Logged]]:
    """The metrics and the log measures of one run of every handler."""
    output = run_handlers(settings, names)
    return emitted_in(output), logged_in(output)


def run_handlers(settings: StackSettings, names: ResourceNames) -> str:
    """Everything the handlers printed (logs and EMF) through their metric-emitting paths."""
    run = HandlerRun(settings, names)
    start = 1_700_000_000 // 3600 * 3600
    history_bars = 400
    first_prediction = start + history_bars * run.bar
    horizon_s = settings.prediction_horizon_minutes * 60
    end = first_prediction + SCORED_PREDICTIONS * settings.trading_interval * 60 + horizon_s + 4 * run.bar
    with patched_environ({"AWS_DEFAULT_REGION": names.region, "AWS_ENDPOINT_URL": None}), mock_aws():
        run.provision(start, end)
        run.predict_and_evaluate(first_prediction)
        run.trade(end)
        run.collect()
    return run.output.getvalue()
