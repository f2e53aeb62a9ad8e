"""`btc-trader local run`: the whole system on replayed candles, in one process, offline.

An embedded emulator (moto, in-process) holds the stack's resources; the real collector fills
the prices table, and the real trading state machine runs every `tradingInterval` of replayed
time with the real handlers as its tasks. Paper trading only. One line per decision, with its
reasons, then a summary whose wallet can be checked against its trades.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from btc_trader.adapters.candle_files import read_candles
from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.adapters.price_sources import replay_spec
from btc_trader.local.emulator import LOCAL_ACCOUNT, create_table
from btc_trader.local.environ import patched_environ
from btc_trader.local.invoke import run_handler, scheduled_event
from btc_trader.local.workflow_runner import (
    MOTO_CONFIG,
    failure_cause,
    handlers_as_lambdas,
    run_execution,
)
from btc_trader.services.backfill import bar_length
from btc_trader.storage_schema import TABLES
from btc_trader.workflow import definition_json
from components.naming import ResourceNames
from components.runtime_env import (
    ML_PREDICTOR,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
    TRADE_EXECUTOR,
    function_environments,
    kill_switch_parameter,
)
from components.settings import StackSettings, load_stack_with_overrides, stack_region

OFFLINE_MODELS = ["custom"]


class LocalRunError(ValueError):
    """The run cannot start as asked (too few candles for the ticks, ...)."""
HISTORY_BARS = 120  # history loaded before the first decision (the technical model needs 51)


@dataclass
class RunSummary:
    stack: str
    replay: str
    ticks: int
    first_decision: str = ""
    last_decision: str = ""
    executions: dict[str, int] = field(default_factory=Counter)
    trades: dict[str, int] = field(default_factory=Counter)
    rejections: dict[str, int] = field(default_factory=Counter)
    models: list[str] = field(default_factory=list)
    wallet: dict[str, float] = field(default_factory=dict)
    start_equity_usd: float = 0.0
    final_equity_usd: float = 0.0
    return_pct: float = 0.0
    buy_and_hold_pct: float = 0.0
    kill_switch: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for key in ("executions", "trades", "rejections"):
            data[key] = dict(data[key])
        return data


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _provision(names: ResourceNames, region: str) -> None:
    dynamodb = boto3.client("dynamodb", region_name=region)
    for spec in TABLES:
        create_table(dynamodb, spec, names.table(spec.role))
    boto3.client("s3", region_name=region).create_bucket(Bucket=names.raw_bucket)
    boto3.client("sns", region_name=region).create_topic(Name=names.alerts_topic)
    boto3.client("ssm", region_name=region).put_parameter(
        Name=kill_switch_parameter(names), Value="off", Type="String")


def _environments(settings: StackSettings, names: ResourceNames, replay: Path, models: list[str]) -> dict[str, dict]:
    envs = function_environments(settings, names)
    # One replayed venue stands for the market: one source is enough for it.
    envs[PRICE_COLLECTOR] |= {"BTC_TRADER_PRICE_SOURCES": json.dumps([replay_spec("replay", replay)]),
                              "BTC_TRADER_MIN_SOURCES": "1",
                              "BTC_TRADER_MAX_SOURCE_STALENESS_SECONDS": str(max(300, settings.price_collection_interval * 120))}
    weights = {m: settings.model_weights.get(m, 1.0) for m in models}
    for function in (ML_PREDICTOR, PREDICTION_EVALUATOR):
        envs[function] |= {"BTC_TRADER_ML_MODELS": json.dumps(models), "BTC_TRADER_MODEL_WEIGHTS": json.dumps(weights)}
        if "bedrock" not in models:
            envs[function].pop("BTC_TRADER_BEDROCK_MODEL_ID", None)
        if "huggingface" not in models:
            envs[function].pop("BTC_TRADER_SAGEMAKER_ENDPOINT", None)
    return envs


def local_run(
    replay: Path,
    ticks: int,
    stack: str = "dev",
    start: int | None = None,
    models: list[str] | None = None,
    overrides: dict[str, str] | None = None,
    emit: Callable[[str], None] = print,
) -> RunSummary:
    """Run the collector and the trading workflow `ticks` times over the replayed candles."""
    settings = load_stack_with_overrides(stack, overrides or {})
    if settings.enable_real_trading:
        settings = settings.model_copy(update={"enable_real_trading": False})  # local runs are paper only
    region = stack_region(stack)
    names = ResourceNames(stack, LOCAL_ACCOUNT, region)
    candles = read_candles(replay)
    bar = bar_length(candles)
    models = models or OFFLINE_MODELS
    summary = RunSummary(stack=stack, replay=Path(replay).name, ticks=ticks, models=models)
    excluded = sorted(set(settings.ml_models) - set(models))
    if excluded:
        summary.notes.append(f"models {excluded} need AWS and are excluded from this offline run; using {models}")
    collect_every = settings.price_collection_interval * 60
    trade_every = settings.trading_interval * 60
    first_possible = candles[0].timestamp + HISTORY_BARS * collect_every + bar
    start = max(start or first_possible, first_possible)
    start -= start % collect_every
    last_needed = start + (ticks - 1) * trade_every
    if last_needed > candles[-1].timestamp + bar:
        raise LocalRunError(f"{replay}: {ticks} ticks from {iso(start)} need candles until {iso(last_needed)}, "
                            f"the file ends at {iso(candles[-1].timestamp + bar)}; use fewer --ticks or an earlier --from")
    # The embedded emulator needs a region and (fake) credentials, and must not inherit an
    # endpoint or a profile that would send anything to AWS or to another emulator.
    fake_aws = {"AWS_DEFAULT_REGION": region, "AWS_REGION": region, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                "AWS_ENDPOINT_URL": None, "AWS_PROFILE": None}
    with patched_environ(fake_aws), mock_aws(config=MOTO_CONFIG):
        _provision(names, region)
        envs = _environments(settings, names, Path(replay), models)
        # Bars that closed before the first decision become history, as `data backfill` does.
        history = [c for c in candles if c.timestamp + bar <= start - collect_every]
        symbol = settings.symbols[0]  # the replay file stands for the stack's first symbol
        DynamoDBPriceRepository(names.table("prices")).save_candles(symbol, history, source="replay", bar_seconds=bar)
        handlers = {
            names.function(role): (lambda event, role=role: run_handler(role, event, envs[role], region))
            for role in (ML_PREDICTOR, RISK_MANAGER, TRADE_EXECUTOR)
        }
        topic = f"arn:aws:sns:{region}:{LOCAL_ACCOUNT}:{names.alerts_topic}"
        with handlers_as_lambdas(handlers) as arns:
            machine = boto3.client("stepfunctions", region_name=region).create_state_machine(
                name=names.state_machine, roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local",
                definition=definition_json(arns[names.function(ML_PREDICTOR)], arns[names.function(RISK_MANAGER)],
                                           arns[names.function(TRADE_EXECUTOR)], topic),
            )["stateMachineArn"]
            next_collection = start - collect_every * (trade_every // collect_every)
            done = 0
            for tick in range(ticks):
                at = start + tick * trade_every
                try:  # Ctrl-C ends the run with the summary so far
                    while next_collection <= at:
                        run_handler(PRICE_COLLECTOR,
                                    scheduled_event(datetime.fromtimestamp(next_collection, UTC), region),
                                    envs[PRICE_COLLECTOR], region)
                        next_collection += collect_every
                    execution = run_execution(machine, {"symbol": symbol, "execution_id": f"local-{at}",
                                                        "requested_at": iso(at)}, name=f"tick-{tick}-{at}")
                    _account(summary, execution, at, emit)
                    run_handler(PREDICTION_EVALUATOR, scheduled_event(datetime.fromtimestamp(at, UTC), region),
                                envs[PREDICTION_EVALUATOR], region)
                except KeyboardInterrupt:
                    summary.notes.append(f"interrupted after {done} of {ticks} ticks")
                    break
                done += 1
        store = DynamoDBTradingStore(names.table("trades"), names.table("trading-state"))
        wallet, risk, _ = store.load_state(symbol, settings.paper_starting_cash)
        first_price = _price_at(candles, start)
        last_at = start + max(0, done - 1) * trade_every
        last_price = _price_at(candles, last_at)
        summary.ticks = done
        summary.first_decision, summary.last_decision = iso(start), iso(last_at)
        summary.wallet = {"usd": round(wallet.usd, 2), "btc": round(wallet.btc, 8),
                          "fees_paid_usd": round(wallet.fees_paid_usd, 2),
                          "realised_pnl_usd": round(wallet.realised_pnl_usd, 2)}
        summary.start_equity_usd = settings.paper_starting_cash
        summary.final_equity_usd = round(wallet.equity(last_price), 2)
        summary.return_pct = round((summary.final_equity_usd / settings.paper_starting_cash - 1) * 100, 4)
        summary.buy_and_hold_pct = round((last_price / first_price - 1) * 100, 4)
        summary.kill_switch = risk.kill_switch
    return summary


def _price_at(candles, at: int) -> float:
    from btc_trader.domain.candles import latest_at_or_before

    bar = latest_at_or_before(candles, at - 60)
    return bar.close if bar else candles[0].open


def _account(summary: RunSummary, execution: dict[str, Any], at: int, emit: Callable[[str], None]) -> None:
    status = execution["status"]
    summary.executions[status] += 1
    if status != "SUCCEEDED":
        emit(f"{iso(at)}  FAILED   {failure_cause(execution['executionArn'])[:300]}")
        return
    state = json.loads(execution["output"])
    prediction, risk, trade = state["prediction"], state["risk"], state.get("trade")
    head = (f"{iso(at)}  {prediction.get('current_price') or 0:>10.2f}  {prediction['direction']:<6} "
            f"conf {prediction['confidence']:.2f}  {risk['action']:<4}")
    if trade:
        summary.trades[risk["action"]] += 1
        emit(f"{head}  {trade['status']} {trade['filled_qty']:.6f} BTC @ {trade['avg_price'] or 0:.2f}  "
             f"equity {trade['wallet']['equity_usd']:.2f}")
        return
    for reason in risk["reasons"]:
        summary.rejections[reason.split(":", 1)[0]] += 1
    emit(f"{head}  rejected: {'; '.join(risk['reasons'])}")

