"""`btc-trader local run`: the main job — the whole system, paper trading, on the local emulator.

The market comes from, in order: `--replay FILE` (candles replayed on the stack's schedule); the
exchanges (recent klines backfilled as history, then the stack's live price sources every tick);
or, when the network is unreachable, a clearly labelled synthetic series. Every tick the real
collector stores a price, and the stack's real state machine — executed by the emulator —
invokes the real handlers through a local Lambda server; the evaluator then scores matured
predictions. One line per decision with its reasons, then a summary whose wallet can be checked
against its trades. With no emulator running, a temporary one is started for the run.
"""

from __future__ import annotations

import json
import math
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from btc_trader.adapters.candle_files import read_candles
from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.adapters.price_sources import replay_spec
from btc_trader.domain.candles import Candle
from btc_trader.local import emulator, workers
from btc_trader.local.emulator import EmulatorState
from btc_trader.local.invoke import prewarm, run_handler, scheduled_event
from btc_trader.local.lambda_server import LocalLambdaServer
from btc_trader.local.logs import handler_log, log_handler_error
from btc_trader.local.state_machine import (
    AwsServiceIntegrations,
    StateMachine,
    StatesError,
    lambda_error,
)
from btc_trader.local.workflow_runner import failure_cause
from btc_trader.services.backfill import bar_length
from btc_trader.stack.environment import (
    ORDER_RECONCILER,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    function_environments,
)
from btc_trader.stack.settings import StackSettings, load_stack_with_overrides

OFFLINE_MODELS = ["custom"]
HISTORY_BARS = 120  # history loaded before the first decision (the technical model needs 51)
KLINES_PROBE_TIMEOUT_S = 5
# The labelled synthetic series ends here (a fixed time, so that a replay of it is the same run
# on every machine and every day): 2024-01-01T00:00:00Z.
SYNTHETIC_END = 1_704_067_200
SYNTHETIC_MINUTES = 7 * 24 * 60
# More weight than any measured window can collect: the configured modelWeights apply.
CONFIGURED_WEIGHTS_SAMPLES = 1_000_000_000
# Who executes the state machine's definition: this process (`local.state_machine`, the default,
# far less CPU per decision) or moto's Step Functions in the emulator (executions listed by the AWS CLI).
EXECUTORS = ("fast", "emulator")


@dataclass(frozen=True)
class Profile:
    """Settings for a run that are not the stack's: always named and printed with every run."""

    name: str
    overrides: dict[str, str]  # stack keys (`--set` syntax); the user's own --set win
    configured_weights: bool  # the configured modelWeights instead of weights earned by measured skill
    purpose: str


DEMO_PROFILE = Profile(
    name="demo",
    overrides={"riskThreshold": "0.3", "buyThresholdPct": "0.1", "sellThresholdPct": "-0.1",
               "cooldownMinutes": "0", "maxTradesPerDay": "100"},
    configured_weights=True,
    purpose="shows the machinery trading (orders, fills, the paper wallet); it is NOT a strategy and has no "
            "measured edge",
)
PROFILES = {DEMO_PROFILE.name: DEMO_PROFILE}


class LocalRunError(ValueError):
    """The run cannot start as asked (too few candles for the ticks, ...)."""


@dataclass
class RunSummary:
    stack: str
    replay: str
    ticks: int
    market: str = ""
    emulator: str = ""
    executor: str = "fast"  # who executed the state machine: this process, or moto in the emulator
    first_decision: str = ""
    last_decision: str = ""
    executions: dict[str, int] = field(default_factory=Counter)
    trades: dict[str, int] = field(default_factory=Counter)
    rejections: dict[str, int] = field(default_factory=Counter)
    failures: dict[str, int] = field(default_factory=Counter)  # scheduled functions that raised
    models: list[str] = field(default_factory=list)
    profile: str | None = None  # a named profile (DEMONSTRATION settings), None: the stack's own
    refusal_reasons: dict[str, int] = field(default_factory=Counter)  # deciding reason, in words
    wallet: dict[str, float] = field(default_factory=dict)
    start_equity_usd: float = 0.0
    final_equity_usd: float = 0.0
    return_pct: float = 0.0
    buy_and_hold_pct: float = 0.0
    kill_switch: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for key in ("executions", "trades", "rejections", "failures", "refusal_reasons"):
            data[key] = dict(data[key])
        return data


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Market:
    """Where prices come from: a replayed file (`candles`), or the live venues (`candles` = history)."""

    label: str
    candles: list[Candle]
    replay: Path | None  # None: the stack's live price sources, in real time
    synthetic: bool = False


def _network_available(host: str = "api.binance.com", port: int = 443) -> bool:
    try:
        with socket.create_connection((host, port), timeout=KLINES_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def synthetic_market(home: Path, emit: Callable[[str], None], why: str = "") -> Market:
    """The labelled synthetic series (`local.synthetic`), always the same candles, as a replay."""
    from btc_trader.local.synthetic import write_synthetic_candles

    files = write_synthetic_candles(home / "synthetic", SYNTHETIC_END, minutes=SYNTHETIC_MINUTES)
    path = files["synthetic-usd-a"]
    emit(f"running on a SYNTHETIC price series ({path}), not market data{why}; pass --replay FILE for real candles")
    return Market(f"SYNTHETIC series {path.name} (not market data)", read_candles(path), path, synthetic=True)


def choose_market(replay: Path | None, settings: StackSettings, ticks: int, now: int, home: Path,
                  emit: Callable[[str], None], fetch_history: Callable[[str, int, int], list[Candle]] | None = None,
                  online: Callable[[], bool] = _network_available, synthetic: bool = False) -> Market:
    """The replay file; the synthetic series if asked; else recent klines + live sources; else synthetic."""
    if replay is not None:
        return Market(f"replay of {Path(replay).name}", read_candles(replay), Path(replay))
    if synthetic:
        return synthetic_market(home, emit, " (--synthetic)")
    symbol = settings.symbols[0]
    collect_every = settings.price_collection_interval * 60
    history_start = now - (HISTORY_BARS + 2) * collect_every
    if online():
        from btc_trader.adapters.price_sources.base import SourceError

        fetch = fetch_history or _fetch_klines(settings)
        for exchange in ("binance", "binanceus"):
            try:
                history = fetch(exchange, history_start, now)
            except SourceError as exc:
                emit(f"history from {exchange} klines failed: {exc.reason}")
                continue
            if history:
                emit(f"history: {len(history)} bars of {symbol} from {exchange} klines; then live prices "
                     f"from {', '.join(settings.price_sources)} every tick")
                return Market(f"live ({', '.join(settings.price_sources)}), history from {exchange} klines",
                              history, None)
        emit("the exchanges gave no history")
    else:
        emit("the network is unreachable")
    return synthetic_market(home, emit)


def _fetch_klines(settings: StackSettings) -> Callable[[str, int, int], list[Candle]]:
    from btc_trader.adapters.binance_klines import BinanceKlinesClient
    from btc_trader.adapters.price_sources import build_session

    def fetch(exchange: str, start: int, end: int) -> list[Candle]:
        client = BinanceKlinesClient(build_session(settings.http_retries), exchange)
        return list(client.candles(settings.symbols[0], start - start % 60, end - end % 60, "1m"))

    return fetch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((emulator.HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def emulator_for(stack: str, port: int | None, emit: Callable[[str], None], lock: bool = False
                 ) -> Iterator[EmulatorState]:
    """The running emulator of `stack` (resolved as every command does), or a temporary one.

    With `lock`, the emulator is held for this run: a second run on it is refused.
    """
    state = emulator.find_running_or_none(port, stack)
    if state is not None:
        with emulator.run_lock(state) if lock else nullcontext():
            emulator.provision(state)
            emit(f"using the local emulator at {state.endpoint} (stack {stack}); what this run stores stays there")
            yield state
        return
    temporary, _ = emulator.start(stack, _free_port())
    emit(f"no local emulator is running: started a temporary one at {temporary.endpoint} for this run "
         "(`btc-trader local up` keeps one, so that `local trades`/`wallet`/`logs` can read the run after)")
    try:
        yield temporary
    finally:
        emulator.stop(temporary.port)


def _environments(settings: StackSettings, state: EmulatorState, market: Market, models: list[str],
                  profile: Profile | None = None) -> dict[str, dict]:
    envs = function_environments(settings, state.names)
    if market.replay is not None:
        # One replayed venue stands for the market: one source is enough for it.
        envs[PRICE_COLLECTOR] |= {
            "BTC_TRADER_PRICE_SOURCES": json.dumps([replay_spec("replay", market.replay)]),
            "BTC_TRADER_MIN_SOURCES": "1",
            "BTC_TRADER_MAX_SOURCE_STALENESS_SECONDS": str(max(300, settings.price_collection_interval * 120)),
        }
    weights = {m: settings.model_weights.get(m, 1.0) for m in models}
    for env in envs.values():
        if "BTC_TRADER_ML_MODELS" not in env:
            continue
        env |= {"BTC_TRADER_ML_MODELS": json.dumps(models), "BTC_TRADER_MODEL_WEIGHTS": json.dumps(weights)}
        if profile is not None and profile.configured_weights:
            env["BTC_TRADER_MIN_SKILL_SAMPLES"] = str(CONFIGURED_WEIGHTS_SAMPLES)
        if "bedrock" not in models:
            env.pop("BTC_TRADER_BEDROCK_MODEL_ID", None)
        if "huggingface" not in models:
            env.pop("BTC_TRADER_SAGEMAKER_ENDPOINT", None)
    return envs


def local_run(
    replay: Path | None,
    ticks: int,
    stack: str = "dev",
    start: int | None = None,
    models: list[str] | None = None,
    overrides: dict[str, str] | None = None,
    emit: Callable[[str], None] = print,
    tick_seconds: float | None = None,
    port: int | None = None,
    fetch_history: Callable[[str, int, int], list[Candle]] | None = None,
    online: Callable[[], bool] = _network_available,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    profile: Profile | None = None,
    synthetic: bool = False,
    executor: str = "fast",
) -> RunSummary:
    """Run the collector and the trading workflow `ticks` times; paper trading only.

    `profile` runs with a named set of non-stack settings (the DEMONSTRATION profile), announced
    before the first decision and in the summary; `overrides` (`--set`) apply on top of it.
    """
    stack_settings = load_stack_with_overrides(stack, overrides or {})
    settings = load_stack_with_overrides(
        stack, (profile.overrides if profile else {}) | (overrides or {})).check_workflow_lease()  # it runs the workflow
    if settings.enable_real_trading:
        settings = settings.model_copy(update={"enable_real_trading": False})  # local runs are paper only
    if tick_seconds is not None and tick_seconds < 0:
        raise LocalRunError(f"--tick-seconds must be 0 or more, got {tick_seconds:g}")
    if executor not in EXECUTORS:
        raise LocalRunError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    models = models or OFFLINE_MODELS
    if profile is not None:
        emit(_profile_banner(profile, stack_settings, settings))
    market = choose_market(replay, settings, ticks, int(clock()), emulator.state_dir(), emit, fetch_history, online,
                           synthetic)
    candles = market.candles
    bar = bar_length(candles) if len(candles) > 1 else 60
    collect_every = settings.price_collection_interval * 60
    trade_every = settings.trading_interval * 60
    live = market.replay is None
    if live:
        start = int(clock())
        start -= start % collect_every
    else:
        first_possible = candles[0].timestamp + HISTORY_BARS * collect_every + bar
        start = max(start or first_possible, first_possible)
        start -= start % collect_every
        last_needed = start + (ticks - 1) * trade_every
        if last_needed > candles[-1].timestamp + bar:
            raise LocalRunError(f"{market.replay}: {ticks} ticks from {iso(start)} need candles until "
                                f"{iso(last_needed)}, the file ends at {iso(candles[-1].timestamp + bar)}; "
                                "use fewer --ticks or an earlier --from")
    # Replays run as fast as they can by default; live ticks follow the stack's schedule.
    pace = tick_seconds if tick_seconds is not None else (trade_every if live else 0.0)
    summary = RunSummary(stack=stack, replay=market.replay.name if market.replay else "live",
                         ticks=ticks, models=models, market=market.label, profile=profile.name if profile else None,
                         executor=executor)
    if profile is not None:
        summary.notes.append(f"DEMONSTRATION profile {profile.name!r}: {profile.purpose}")
    if market.synthetic:
        summary.notes.append("SYNTHETIC prices: not market data")
    excluded = sorted(set(settings.ml_models) - set(models))
    if excluded:
        summary.notes.append(f"models {excluded} need AWS and are excluded from this offline run; using {models}")
    symbol = settings.symbols[0]  # the replay file stands for the stack's first symbol
    run_id = uuid.uuid4().hex[:8]
    with emulator_for(stack, port, emit, lock=True) as state, emulator.aws_environment(state):
        summary.emulator = state.endpoint
        envs = _environments(settings, state, market, models, profile)
        prewarm(envs, state.region)  # the workers' cold starts overlap the history seeding below
        # Only the window the models read (HISTORY_BARS collection intervals) becomes history,
        # one price per slot the schedule can read (what the collector would have stored), not
        # every minute of the file: the models resample to the collection interval anyway.
        oldest = start - (HISTORY_BARS + 2) * collect_every
        step = math.gcd(collect_every, trade_every)
        history = [c for c in candles if oldest <= c.timestamp and c.timestamp + bar <= start - collect_every
                   and (c.timestamp + bar) % step == 0]
        DynamoDBPriceRepository(state.names.table("prices")).save_candles(
            symbol, history, source="klines" if live else "replay", bar_seconds=bar)
        store = DynamoDBTradingStore(state.names.table("trades"), state.names.table("trading-state"))
        wallet, risk, _ = store.load_state(symbol, settings.paper_starting_cash)
        first_price = _price_at(candles, start)
        summary.start_equity_usd = round(wallet.equity(first_price), 2)
        if wallet.btc or abs(wallet.usd - settings.paper_starting_cash) > 0.005:
            summary.notes.append("continued the paper wallet stored in the emulator by an earlier run "
                                 "(`btc-trader local down` and `up` start afresh)")
        sfn = boto3.client("stepfunctions")
        machine = emulator.state_machine_arn(state)

        def run_local(function: str, at: int) -> None:
            """A scheduled function; its failure is reported and the run goes on, as in AWS."""
            with handler_log(stack, function, None) as log:
                try:
                    run_handler(function, scheduled_event(datetime.fromtimestamp(at, UTC), state.region),
                                envs[function], state.region, log_stream=log)
                except Exception as exc:  # a Lambda error: logged, alarmed, retried by AWS; never a trade
                    log_handler_error(log, function, exc)
                    summary.failures[function] += 1
                    emit(f"{iso(at)}  {function} FAILED: {type(exc).__name__}: {exc} (traceback: "
                         f"`btc-trader local logs {function} --level ERROR`)")

        def after_decision(at: int) -> None:
            run_local(PREDICTION_EVALUATOR, at)
            run_local(ORDER_RECONCILER, at)  # scheduled every tradingInterval, as deployed

        # On a replay with the handlers in their own workers, a tick's evaluator and reconciler run
        # while the next tick's collections do, as their schedules overlap in AWS. Neither reads
        # what the other writes (the evaluator reads prices up to its own time, the collections
        # store later ones), and the next decision waits for both, since its prediction reads the
        # scores: the same decisions as one after the other, on two cores. In-process handlers share
        # this process's environment, so they run one at a time.
        overlap = not live and workers.shared_pool() is not None
        pending: Future | None = None
        collections, done, last_price = 0, 0, first_price
        execute = _executor(executor, sfn, machine, state, envs)
        emit(DECISION_HEADER)
        with LocalLambdaServer(state, environments=envs) if executor == "emulator" else nullcontext(), \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="scheduled") as background:
            next_collection = start - collect_every * (trade_every // collect_every)
            for tick in range(ticks):
                at = int(clock()) // collect_every * collect_every if live else start + tick * trade_every
                try:  # Ctrl-C ends the run with the summary so far
                    if tick and pace:
                        sleep(pace)
                        if live:
                            at = int(clock()) // collect_every * collect_every
                    if live:
                        run_local(PRICE_COLLECTOR, at)
                        collections += 1
                    else:
                        while next_collection <= at:
                            run_local(PRICE_COLLECTOR, next_collection)
                            next_collection += collect_every
                            collections += 1
                    if pending is not None:
                        pending.result()
                        pending = None
                    payload = {"symbol": symbol, "execution_id": f"local-{run_id}-{at}", "requested_at": iso(at)}
                    outcome = execute(payload, f"{run_id}-tick-{tick}-{at}")
                    price = _account(summary, outcome, at, emit)
                    last_price = price or last_price
                    if overlap:
                        pending = background.submit(after_decision, at)
                    else:
                        after_decision(at)
                except KeyboardInterrupt:
                    summary.notes.append(f"interrupted after {done} of {ticks} ticks")
                    break
                if tick == 0:
                    summary.first_decision = iso(at)
                summary.last_decision = iso(at)
                done += 1
            if pending is not None:  # the last tick's evaluator and reconciler
                pending.result()
        wallet, risk, _ = store.load_state(symbol, settings.paper_starting_cash)
        if not live:
            last_price = _price_at(candles, start + max(0, done - 1) * trade_every)
        summary.ticks = done
        summary.wallet = {"usd": round(wallet.usd, 2), "btc": round(wallet.btc, 8),
                          "fees_paid_usd": round(wallet.fees_paid_usd, 2),
                          "realised_pnl_usd": round(wallet.realised_pnl_usd, 2)}
        summary.final_equity_usd = round(wallet.equity(last_price), 2)
        summary.return_pct = round((summary.final_equity_usd / summary.start_equity_usd - 1) * 100, 4)
        summary.buy_and_hold_pct = round((last_price / first_price - 1) * 100, 4)
        summary.kill_switch = risk.kill_switch
    return summary


@dataclass(frozen=True)
class Outcome:
    """How one execution of the trading workflow ended, whichever executor ran it."""

    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    output: dict[str, Any] | None  # the final state of a SUCCEEDED execution
    cause: str = ""  # the first step failure of a failed one, as "error: cause"


def _executor(kind: str, sfn: Any, machine: str, state: EmulatorState, envs: dict[str, dict]
              ) -> Callable[[dict[str, Any], str], Outcome]:
    """(payload, name) -> Outcome, by the chosen executor of the emulator's state machine definition."""
    if kind == "emulator":
        return lambda payload, name: _execute(sfn, machine, payload, name)
    from btc_trader.local.invoke import function_role, invoke

    def invoke_lambda(function_arn: str, payload: Any) -> Any:
        role = function_role(state.names, function_arn)
        if role is None or role not in envs:
            raise StatesError("Lambda.ResourceNotFoundException", f"Function not found: {function_arn}")
        outcome = invoke(role, payload, state, env=envs[role])  # the path the emulator's Lambda calls take
        if not outcome["ok"]:
            raise lambda_error(outcome["result"])
        return outcome["result"]

    # The definition the emulator holds: the one `pulumi up` deploys (a test proves them equal).
    definition = sfn.describe_state_machine(stateMachineArn=machine)["definition"]
    machine_runner = StateMachine(definition, invoke_lambda, AwsServiceIntegrations(), arn=machine)

    def run(payload: dict[str, Any], name: str) -> Outcome:
        result = machine_runner.execute(payload, name)
        return Outcome(result.status, result.output, "" if result.status == "SUCCEEDED" else result.failure_cause())

    return run


def _execute(sfn: Any, machine: str, payload: dict[str, Any], name: str, timeout_s: float = 300) -> Outcome:
    """Start an execution of the emulator's state machine (moto's executor) and wait for it to end."""
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] == "SUCCEEDED":
            return Outcome("SUCCEEDED", json.loads(described["output"]))
        if described["status"] != "RUNNING":
            return Outcome(described["status"], None, failure_cause(arn))
        if time.monotonic() > deadline:
            raise LocalRunError(f"execution {name} still running after {timeout_s:g} s; see `btc-trader local logs`")
        time.sleep(0.02)


def _price_at(candles, at: int) -> float:
    from btc_trader.domain.candles import latest_at_or_before

    bar = latest_at_or_before(candles, at - 60)
    return bar.close if bar else candles[0].open


DECISION_HEADER = (f"{'decision time':<20}  {'price':>10}  {'predicted':<6} {'conf':>4}  {'action':<6}  "
                   "outcome (a refusal: every failing rule; the first decided)")


def _line(at: int, price: float | None, direction: str, confidence: float, action: str, outcome: str) -> str:
    return f"{iso(at):<20}  {price or 0:>10.2f}  {direction:<6} {confidence:>4.2f}  {action:<6}  {outcome}"


def deciding_rule(reasons: list[str]) -> str:
    """The rule that decided a refusal: the risk manager's first reason, as `backtest` counts it."""
    return reasons[0].split(":", 1)[0] if reasons else "unknown"


def _account(summary: RunSummary, outcome: Outcome, at: int, emit: Callable[[str], None]) -> float | None:
    summary.executions[outcome.status] += 1
    if outcome.status != "SUCCEEDED" or outcome.output is None:
        emit(f"{iso(at):<20}  FAILED   {outcome.cause[:300]}")
        return None
    state = outcome.output
    prediction, risk, trade = state["prediction"], state["risk"], state.get("trade")
    price = prediction.get("current_price")
    if trade:
        summary.trades[risk["action"]] += 1
        emit(_line(at, price, prediction["direction"], prediction["confidence"], risk["action"],
                   f"{trade['status']} {trade['filled_qty']:.6f} BTC @ {trade['avg_price'] or 0:.2f}  "
                   f"equity {trade['wallet']['equity_usd']:.2f}"))
        return price
    # Counted once, by the rule that decided (as `backtest` counts); every reason stays in the line.
    reasons = risk["reasons"] or [f"unknown: not approved ({risk['action']})"]
    summary.rejections[deciding_rule(reasons)] += 1
    summary.refusal_reasons[reasons[0].split(":", 1)[-1].strip()[:200]] += 1
    emit(_line(at, price, prediction["direction"], prediction["confidence"], risk["action"],
               f"REFUSED {'; '.join(reasons)}"))
    return price


def _profile_banner(profile: Profile, stack: StackSettings, settings: StackSettings) -> str:
    """What the profile changes, against the stack's own values, in one labelled paragraph."""
    changed = []
    for key in profile.overrides:
        field_name = next(name for name, f in StackSettings.model_fields.items() if f.alias == key)
        changed.append(f"{key} {getattr(stack, field_name):g} -> {getattr(settings, field_name):g}")
    weights = "model weights: the configured modelWeights, not weights earned by measured skill; " \
        if profile.configured_weights else ""
    return (f"=== DEMONSTRATION PROFILE {profile.name!r}, not the stack's settings: {weights}"
            f"{', '.join(changed)}. It {profile.purpose}. ===")
