"""`btc-trader local ...`: SAM-style local development on the embedded emulator.

up / down / status       the emulator with every resource of the stack
invoke FUNCTION          one handler, in-process (`sam local invoke`)
generate-event KIND      sample events to edit (`sam local generate-event`)
start-lambda             the Lambda Invoke API on 127.0.0.1 (`sam local start-lambda`)
run                      the main job: collector + trading workflow, paper, one line per decision
logs / trades / wallet   what the local functions stored, as tables
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from btc_trader.cli_support import CliError, parse_overrides, parse_time, print_json, render_table


def _with_emulator(args: argparse.Namespace):
    """The emulator resolved as for every command (checked against --stack), or a temporary one."""
    import contextlib

    from btc_trader.local import emulator
    from btc_trader.local.run import emulator_for

    stack = getattr(args, "stack", None)
    state = emulator.find_running_or_none(getattr(args, "port", None), stack)
    if state is None:
        return emulator_for(stack or "dev", None, lambda line: print(line, file=sys.stderr))
    return contextlib.nullcontext(state)


def cmd_up(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator

    state, started = emulator.start(args.stack, args.port)
    verb = "started" if started else "already running"
    print(f"local emulator {verb}: stack {state.stack}, {state.endpoint} (pid {state.pid}, region {state.region})")
    for kind, items in emulator.resources(state).items():
        print(f"  {kind}: {', '.join(items) or '-'}")
    suffix = "" if args.port == emulator.DEFAULT_PORT else f" --port {args.port}"
    print(f"stop it with: btc-trader local down{suffix}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator

    if args.port is None:
        dead = [s for s in emulator.recorded_states() if not emulator.is_running(s)]
        if not emulator.running_states() and dead:
            for state in dead:  # nothing runs: clean up what dead emulators left behind
                emulator.stop(state.port)
                print(f"cleaned up the dead emulator recorded on port {state.port} (stack {state.stack})")
            return 0
        port = emulator.find_running().port  # the one running, or an error naming them all
    else:
        port = args.port
    state = emulator.stop(port)
    print(f"local emulator on port {port} stopped; its logs moved to {_archive_dir()}" if state
          else f"no local emulator recorded on port {port}")
    return 0


def _archive_dir() -> str:
    from btc_trader.local.logs import archive_dir

    return str(archive_dir())


def cmd_status(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator
    from btc_trader.local.lambda_registry import registered_lambda_server

    states = [emulator.read_state(args.port)] if args.port else emulator.recorded_states()
    states = [s for s in states if s]
    if not states:
        print("no local emulator is running; start one with `btc-trader local up`")
        return 0
    for state in states:
        if emulator.is_running(state):
            print(f"running: stack {state.stack} at {state.endpoint} (pid {state.pid}, since {state.started_at})")
            server = registered_lambda_server(state.port)
            print(f"  lambda server: {server.endpoint if server else 'none (btc-trader local start-lambda)'}")
            for kind, items in emulator.resources(state).items():
                print(f"  {kind}: {', '.join(items) or '-'}")
        else:
            print(f"dead: stack {state.stack} on port {state.port} (pid {state.pid} is gone); "
                  f"clean up with `btc-trader local down --port {state.port}`")
    return 0


def read_event(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"--event: cannot read {source} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"--event {source}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--event {source}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise CliError(f"--event {source}: JSON nested too deeply to be an event") from None
    if not isinstance(event, dict):
        raise CliError(f"--event {source}: the event must be a JSON object")
    return event


def cmd_invoke(args: argparse.Namespace) -> int:
    from btc_trader.local import invoke
    from btc_trader.local.emulator import check_symbol
    from btc_trader.local.events import sample_event

    if args.function not in invoke.FUNCTIONS:
        raise CliError(f"unknown function {args.function!r}; known: {', '.join(sorted(invoke.FUNCTIONS))}")
    replays = invoke.parse_replays(args.replay or [])
    models = invoke.parse_models(args.models) if args.models else None
    event = read_event(args.event) if args.event else None
    with _with_emulator(args) as state:
        env_vars = invoke.load_env_vars(args.env_vars, state.names) if args.env_vars else None
        if event is None:
            at = parse_time(args.at) if args.at else datetime.now(UTC)
            symbol = check_symbol(state, args.symbol)
            kind = invoke.TRIGGERS[args.function]
            if kind == "workflow-state":
                raise CliError(f"{args.function} is a step of the trading workflow: pass its input with --event FILE "
                               f"(`btc-trader local generate-event {_STATE_EVENT[args.function]}` prints one to edit), "
                               "or run the whole workflow with `btc-trader local run`")
            event = sample_event(kind, at, state.region, symbol)
        outcome = invoke.invoke(args.function, event, state, replays, models, args.real_models, env_vars,
                                echo=sys.stderr)
        _end_of_step(args.function, event, outcome, state)
    print_json(outcome["result"])
    return 0 if outcome["ok"] else 1


def _end_of_step(function: str, event: dict, outcome: dict, state) -> None:
    """Release the symbol's lease where the state machine would: after a CheckRisk that does not
    lead to Execute, and after Execute however it ended; otherwise a lone invocation would hold
    the symbol for the lease's expiry and later runs would be refused."""
    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.local.emulator import aws_environment

    approved = outcome["ok"] and outcome["result"].get("approved") is True
    ends = function == "trade-executor" or (function == "risk-manager" and not approved)
    if ends and "symbol" in event and "execution_id" in event:
        with aws_environment(state):
            store = DynamoDBTradingStore(state.names.table("trades"), state.names.table("trading-state"))
            if store.release_lease(event["symbol"], event["execution_id"]):
                print(f"released the lease of {event['symbol']} held by {event['execution_id']} "
                      "(as the workflow does when the execution ends)", file=sys.stderr)


_STATE_EVENT = {"risk-manager": "check-risk", "trade-executor": "execute"}


def cmd_generate_event(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator
    from btc_trader.local.events import FROM_EMULATOR, SampleError, build_sample, sample_event
    from btc_trader.stack.settings import load_stack_file, stack_region

    at = parse_time(args.at) if args.at else datetime.now(UTC)
    if args.kind in FROM_EMULATOR:  # built from the stored price, the wallet and the stack's rules
        state = emulator.find_running(args.port, args.stack)
        symbol = emulator.check_symbol(state, args.symbol)
        try:
            print_json(build_sample(args.kind, at, state, symbol))
        except SampleError as exc:
            raise CliError(str(exc)) from None
        stack = state.stack
    else:
        stack = args.stack or "dev"
        symbols = load_stack_file(stack).symbols
        if args.symbol and args.symbol not in symbols:
            raise CliError(f"stack {stack} does not trade {args.symbol}: its symbols are {', '.join(symbols)}")
        symbol = args.symbol or symbols[0]
        print_json(sample_event(args.kind, at, stack_region(stack), symbol))
    # stdout is the event (usually redirected to a file): say on stderr what was generated.
    print(f"generated a sample {args.kind} event for {symbol} at {at.strftime('%Y-%m-%dT%H:%M:%SZ')} "
          f"(stack {stack}); edit it, then pass it with `local invoke FUNCTION --event FILE`", file=sys.stderr)
    return 0


def cmd_start_lambda(args: argparse.Namespace) -> int:
    from btc_trader.local import invoke
    from btc_trader.local.emulator import find_running
    from btc_trader.local.lambda_server import LocalLambdaServer

    state = find_running(args.emulator_port, args.stack)
    env_vars = invoke.load_env_vars(args.env_vars, state.names) if args.env_vars else None
    server = LocalLambdaServer(state, args.port, env_vars=env_vars, real_models=args.real_models,
                               echo=None if args.quiet else sys.stderr)
    print(f"serving the Lambda Invoke API of stack {state.stack} on {server.endpoint} "
          f"(functions: {', '.join(sorted(invoke.FUNCTIONS))}); the emulator's state machine calls it too")
    print(f"  boto3.client('lambda', endpoint_url='{server.endpoint}').invoke(FunctionName='{state.names.function('ml-predictor')}', ...)")
    print("Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print(f"stopped after {server.invocations} invocations")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from btc_trader.local.invoke import parse_models
    from btc_trader.local.run import PROFILES, local_run

    overrides = parse_overrides(args.set)
    if args.ticks < 1:
        raise CliError(f"--ticks must be at least 1, got {args.ticks}")
    if args.replay and not Path(args.replay).is_file():
        raise CliError(f"--replay {args.replay}: file not found")
    if args.replay and args.synthetic:
        raise CliError("--replay and --synthetic both choose the market: pass one")
    start = int(parse_time(args.start, "--from").timestamp()) if args.start else None
    lines = sys.stderr if args.json else sys.stdout
    summary = local_run(
        Path(args.replay) if args.replay else None, args.ticks, args.stack, start,
        parse_models(args.models) if args.models else None, overrides,
        emit=lambda line: print(line, file=lines, flush=True),
        tick_seconds=args.tick_seconds, port=args.port,
        profile=PROFILES[args.profile] if args.profile else None, synthetic=args.synthetic,
        executor=args.executor,
    )
    data = summary.to_json()
    if args.json:
        print_json(data)
        return 0
    print_summary(data)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from btc_trader.local.demo import run_demo

    demo = run_demo(Path(args.data_dir), args.port, emit=lambda line: print(line, flush=True),
                    report=lambda summary: print_summary(summary.to_json()), ticks=args.ticks)
    traded = demo.traded
    if traded is None:  # never presented as a success: the demo exists to show trades
        raise CliError("the demo filled no BUY and SELL pair, not even under the DEMONSTRATION profile; "
                       "see `btc-trader local logs --level WARNING`")
    profile = f"the DEMONSTRATION profile {traded.profile!r}" if traded.profile else "the stack's own settings"
    print(f"\nfilled under {profile} on {demo.market}: {dict(traded.trades)}; the trades and the wallet "
          "stay in the emulator:")
    return 0


def print_summary(data: dict[str, Any]) -> None:
    """A run's summary, as `local run` prints it."""
    settings = f"DEMONSTRATION profile {data['profile']!r}" if data.get("profile") else "the stack's settings"
    print(f"\nsummary ({data['stack']} stack, {settings}, paper, {data['ticks']} decisions "
          f"{data['first_decision']} .. {data['last_decision']}, market: {data['market']}):")
    for key in ("executions", "trades", "rejections", "failures", "wallet"):
        note = "  (each refused decision once, by its deciding rule)" if key == "rejections" else ""
        if key == "executions":
            note = ("  (the state machine's definition executed by this process)" if data["executor"] == "fast"
                    else "  (executed by moto's Step Functions in the emulator)")
        print(f"  {key:<11} {json.dumps(data[key])}{note}")
    print(f"  equity      {data['start_equity_usd']:.2f} -> {data['final_equity_usd']:.2f} USD "
          f"({data['return_pct']:+.3f}%), buy and hold {data['buy_and_hold_pct']:+.3f}%")
    print(f"  kill switch {'ENGAGED' if data['kill_switch'] else 'off'}")
    for note in data["notes"]:
        print(f"  note: {note}")
    print("  inspect: btc-trader local trades | local wallet | local logs")


def cmd_logs(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator
    from btc_trader.local.invoke import FUNCTIONS
    from btc_trader.local.logs import follow_logs, log_dir, read_logs

    if args.function and args.function not in FUNCTIONS:
        raise CliError(f"unknown function {args.function!r}; known: {', '.join(sorted(FUNCTIONS))}")
    # Logs belong to a running emulator (a stopped one's are archived): resolved as everywhere.
    state = emulator.find_running(args.port, args.stack)
    functions = [args.function] if args.function else sorted(FUNCTIONS)
    since = datetime.fromisoformat(state.started_at).astimezone(UTC).isoformat(timespec="milliseconds")
    records = read_logs(state.stack, functions, args.tail, args.level, args.metrics, since=since)

    def line(r: Any) -> str:
        extra = {k: v for k, v in r.extra.items() if k != "exception"}
        return (r.message + (" " + json.dumps(extra, default=str) if extra else ""))[:args.width]

    if args.json and not args.follow:
        print_json([r.__dict__ for r in records])
        return 0
    if not records and not args.follow:
        level = f" at level {args.level} or above" if args.level else ""
        print(f"no local logs{level} for stack {state.stack} in {log_dir(state.stack)} since the emulator started "
              f"({state.started_at}); run `btc-trader local invoke` or `local run` first")
        return 0
    if records:
        print(render_table([{"time": r.time, "function": r.function, "level": r.level, "message": line(r)}
                            for r in records], ["time", "function", "level", "message"]))
        for r in records:
            if r.extra.get("exception"):
                print(f"\n{r.function} at {r.time}: {r.extra['exception']}")
    if args.follow:
        print(f"following the logs of stack {state.stack} (Ctrl-C stops)", flush=True)

        def show(r: Any) -> None:
            if args.json:
                print(json.dumps(r.__dict__, default=str), flush=True)
                return
            print(f"{r.time}  {r.function:<20}  {r.level:<7}  {line(r)}", flush=True)
            if r.extra.get("exception"):
                print(r.extra["exception"], flush=True)

        with contextlib.suppress(KeyboardInterrupt):
            follow_logs(state.stack, functions, show, args.level, args.metrics,
                        keep_going=lambda: emulator.is_running(state))
    return 0


def cmd_trades(args: argparse.Namespace) -> int:
    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.domain.positions import close_reason, positions
    from btc_trader.local import emulator

    state = emulator.find_running(args.port)
    symbol = emulator.check_symbol(state, args.symbol)
    with emulator.aws_environment(state):
        trades = DynamoDBTradingStore(state.names.table("trades"), state.names.table("trading-state")).recent_trades(
            symbol, args.limit)
    closed, still_open = positions(trades)
    if args.json:
        print_json({"trades": trades, "closed_positions": [p.to_json() for p in closed],
                    "open_position": still_open.to_json() if still_open else None})
        return 0
    if not trades:
        print(f"no trades of {symbol} in {state.names.table('trades')} yet")
        return 0
    rows = []
    for trade in reversed(trades):  # oldest first, like a statement
        created = trade.get("created_at")
        pnl = trade.get("realised_pnl_usd") if trade.get("side") == "SELL" else None
        rows.append({**trade, "time": _minute(created), "realised_pnl_usd": None if pnl is None else round(float(pnl), 2),
                     "why": close_reason(trade) if trade.get("side") == "SELL" else None})
    print(render_table(rows, ["time", "side", "status", "mode", "filled_qty", "avg_price", "fee_usd",
                              "realised_pnl_usd", "why", "trade_id"]))
    print(f"\nclosed positions ({len(closed)}; PnL after fees, from the wallet's average cost)")
    if closed:
        print(render_table([_position_row(p) for p in closed],
                           ["opened", "closed", "bought_btc", "cost_usd", "pnl_usd", "pnl_pct", "held", "closed_by"]))
        print(f"total realised PnL {sum(p.pnl_usd for p in closed):+,.2f} USD")
    else:
        print("  none yet: a position closes when a SELL brings the holding back to zero")
    if still_open:
        print(f"open position: {still_open.bought_btc - still_open.sold_btc:.8f} BTC bought for "
              f"{still_open.cost_usd:,.2f} USD (see `btc-trader local wallet` for its value)")
    if any(not p.complete for p in closed) or (still_open and not still_open.complete):
        print(f"note: the oldest position began before the {len(trades)} trades listed; raise --limit to see it whole")
    return 0


def _minute(epoch: Any) -> str | None:
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M") if epoch is not None else None


def _position_row(p: Any) -> dict[str, Any]:
    held = (p.closed_at - p.opened_at) / 3600 if p.opened_at is not None and p.closed_at is not None else None
    return {"opened": _minute(p.opened_at), "closed": _minute(p.closed_at), "bought_btc": round(p.bought_btc, 8),
            "cost_usd": round(p.cost_usd, 2), "pnl_usd": round(p.pnl_usd, 2),
            "pnl_pct": None if p.pnl_pct is None else round(p.pnl_pct, 3),
            "held": None if held is None else (f"{held:.1f} h" if held < 48 else f"{held / 24:.1f} d"),
            "closed_by": p.closed_by}


def cmd_wallet(args: argparse.Namespace) -> int:
    from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.local import emulator
    from btc_trader.stack.settings import load_stack_file

    state = emulator.find_running(args.port)
    settings = load_stack_file(state.stack)
    symbol = emulator.check_symbol(state, args.symbol)
    with emulator.aws_environment(state):
        store = DynamoDBTradingStore(state.names.table("trades"), state.names.table("trading-state"))
        wallet, risk, version = store.load_state(symbol, settings.paper_starting_cash)
        latest = DynamoDBPriceRepository(state.names.table("prices")).latest(symbol)
    price = float(latest["price"]) if latest else None
    data = {
        "symbol": symbol, "usd": round(wallet.usd, 2), "btc": round(wallet.btc, 8),
        "last_price": price, "equity_usd": round(wallet.equity(price), 2) if price else None,
        "fees_paid_usd": round(wallet.fees_paid_usd, 2), "realised_pnl_usd": round(wallet.realised_pnl_usd, 2),
        "day_start_equity_usd": round(risk.day_start_equity_usd, 2), "trades_today": risk.trades_today,
        "kill_switch": f"ENGAGED ({risk.kill_reason})" if risk.kill_switch else "off", "state_version": version,
    }
    if args.json:
        print_json(data)
        return 0
    print(render_table([{"field": k, "value": v} for k, v in data.items()], ["field", "value"]))
    return 0


def register(commands: Any) -> None:
    """Add `local ...` to the top-level parser."""
    from btc_trader.local.emulator import DEFAULT_PORT
    from btc_trader.local.events import KINDS
    from btc_trader.local.invoke import FUNCTIONS
    from btc_trader.local.workers import InProcessFlag

    local = commands.add_parser("local", help="the local AWS emulator and handlers (SAM-style)").add_subparsers(
        dest="local_command", required=True)
    functions = ", ".join(sorted(FUNCTIONS))

    up = local.add_parser("up", help="start the emulator with every resource of the stack")
    up.add_argument("--stack", default="dev", help="the stack whose resources to create")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="the emulator's loopback port")
    up.set_defaults(handler=cmd_up)
    down = local.add_parser("down", help="stop the emulator (what it held is gone; its logs are archived)")
    down.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    down.set_defaults(handler=cmd_down)
    status = local.add_parser("status", help="what runs where")
    status.add_argument("--port", type=int, help="one emulator's port (default: every recorded one)")
    status.set_defaults(handler=cmd_status)

    invoke = local.add_parser("invoke", help="run a function's handler against the emulator")
    invoke.add_argument("function", help=functions)
    invoke.add_argument("--event", help="event JSON file, or - for stdin (default: the function's trigger)")
    invoke.add_argument("--env-vars", help='JSON file of environment overrides, SAM format: {"Parameters": {...}, "risk-manager": {...}} '
                        '(default: the deployed environment)')
    invoke.add_argument("--stack", help="check that the running emulator holds this stack (default: any)")
    invoke.add_argument("--replay", action="append", metavar="NAME=FILE", help="replace a live source with a candle file, repeatable (default: the live venues)")
    invoke.add_argument("--at", help="the event's time, ISO-8601 (default: now)")
    invoke.add_argument("--models", help="ml-predictor/evaluator: override mlModels, e.g. custom (default: the "
                        "stack's mlModels)")
    invoke.add_argument("--symbol", help="default: the stack's first symbol")
    invoke.add_argument("--real-models", action="store_true",
                        help="send Bedrock/SageMaker calls to AWS with your credentials; storage stays local")
    invoke.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    invoke.add_argument("--in-process", action=InProcessFlag)
    invoke.set_defaults(handler=cmd_invoke)

    generate = local.add_parser("generate-event", help="print a sample event to edit",
                                description="; ".join(f"{k}: {what} -> {who}" for k, (what, who) in KINDS.items()))
    generate.add_argument("kind", choices=list(KINDS), help="the event to print: " + ", ".join(KINDS))
    generate.add_argument("--at", help="the event's time, ISO-8601 (default: now)")
    generate.add_argument("--stack", help="check that the emulator holds this stack (default: dev, or the emulator's)")
    generate.add_argument("--symbol", help="default: the stack's first symbol")
    generate.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    generate.set_defaults(handler=cmd_generate_event)

    start = local.add_parser("start-lambda", help="serve the Lambda Invoke API on 127.0.0.1 (foreground)")
    start.add_argument("--port", type=int, default=3001, help="default 3001, as sam local start-lambda")
    start.add_argument("--emulator-port", type=int, help="the emulator to serve (default: the running one)")
    start.add_argument("--stack", help="check that the emulator holds this stack (default: no check)")
    start.add_argument("--env-vars", help="JSON file of environment overrides, as for invoke (default: none)")
    start.add_argument("--real-models", action="store_true", help="Bedrock/SageMaker calls go to AWS")
    start.add_argument("--quiet", action="store_true", help="do not echo the handlers' logs")
    start.add_argument("--in-process", action=InProcessFlag)
    start.set_defaults(handler=cmd_start_lambda)

    run = local.add_parser("run", help="the main job: collector + trading workflow, paper, on the emulator")
    run.add_argument("--replay", help="candle CSV(.gz) to replay (default: live exchanges, else SYNTHETIC)")
    run.add_argument("--ticks", type=int, default=60, help="trading decisions to run (default 60)")
    run.add_argument("--tick-seconds", type=float,
                     help="real seconds between decisions (default: replay as fast as possible; live: the stack's "
                          "tradingInterval)")
    run.add_argument("--stack", default="dev", help="the stack whose settings and resources run")
    run.add_argument("--from", dest="start", help="replay: first decision time, ISO-8601 (default: as soon as "
                     "the models have history)")
    run.add_argument("--models", help="models to run (default: custom; Bedrock/SageMaker need AWS)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a stack key, repeatable (default: none)")
    run.add_argument("--profile", choices=["demo"],
                     help="demo: a clearly labelled DEMONSTRATION profile that trades (configured model weights "
                          "instead of measured skill, loosened thresholds); not a strategy (default: the stack's "
                          "own settings)")
    run.add_argument("--synthetic", action="store_true",
                     help="replay the labelled SYNTHETIC series (the same candles everywhere; not market data)")
    run.add_argument("--port", type=int, help="the emulator's port (default: the running one, else a temporary one)")
    run.add_argument("--executor", choices=["fast", "emulator"], default="fast",
                     help="who executes the state machine's definition: fast, this process (default; the same "
                          "definition, handlers and storage); emulator, moto's Step Functions in the emulator "
                          "(slower; its executions can be listed with the AWS CLI)")
    run.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    run.add_argument("--in-process", action=InProcessFlag)
    run.set_defaults(handler=cmd_run)

    demo = local.add_parser("demo", help="what `make demo` runs: collector, the stack's run, then the "
                                         "DEMONSTRATION profile if the stack's models refused")
    # A folder that may be absent (then the synthetic series), not an input file: its own dest keeps
    # it out of the CLI's input-file checks.
    demo.add_argument("--data", dest="data_dir", default="../shared/data",
                      help="the folder of real candles (default ../shared/data); without them: the labelled "
                           "SYNTHETIC series")
    demo.add_argument("--ticks", type=int, default=48, help="decisions per run (default 48)")
    demo.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    demo.set_defaults(handler=cmd_demo)

    logs = local.add_parser("logs", help="the local functions' logs, as a table")
    logs.add_argument("function", nargs="?", help=f"one of {functions} (default: all)")
    logs.add_argument("--stack", help="check that the emulator holds this stack (default: no check)")
    logs.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new records (Ctrl-C stops)")
    logs.add_argument("--tail", type=int, default=50, help="the last N records (0: all)")
    logs.add_argument("--level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                      help="this level and above, e.g. ERROR shows ERROR and CRITICAL (default: every level)")
    logs.add_argument("--metrics", action="store_true", help="include the EMF metric lines")
    logs.add_argument("--width", type=int, default=160, help="cut messages at this many characters")
    logs.add_argument("--json", action="store_true", help="print the records as JSON")
    logs.set_defaults(handler=cmd_logs)

    trades = local.add_parser("trades", help="the trades stored in the emulator, then each closed position's "
                              "PnL and why it closed (SELL signal or kill-switch flatten)")
    trades.add_argument("--symbol", help="default: the stack's first symbol")
    trades.add_argument("--limit", type=int, default=50, help="the newest N trades")
    trades.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    trades.add_argument("--json", action="store_true", help="print the trades and closed positions as JSON")
    trades.set_defaults(handler=cmd_trades)

    wallet = local.add_parser("wallet", help="the paper wallet and risk state stored in the emulator")
    wallet.add_argument("--symbol", help="default: the stack's first symbol")
    wallet.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    wallet.add_argument("--json", action="store_true", help="print the wallet as JSON")
    wallet.set_defaults(handler=cmd_wallet)
