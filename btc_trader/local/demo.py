"""`btc-trader local demo` (what `make demo` runs): the whole system at work, on one emulator.

1. The real collector on four venues at one time, one of them the de-pegged BTC/USDC market,
   which it rejects as an outlier.
2. `local run` with the stack's own settings: decisions under column headers, each refusal with
   its reasons. Without a measured edge the stack's models are expected to refuse; if the run
   filled no BUY and no SELL, the demo says why (the deciding rules and the most common reason).
3. Then the same window under the DEMONSTRATION profile (configured model weights instead of
   measured skill, loosened thresholds), announced as such: BUYs and SELLs filled in the paper
   wallet by the same state machine and handlers.

The market is the real candles of `../shared/data` when present, else the labelled SYNTHETIC
series (the same candles on every machine, so the demo is the same run everywhere). Every step
prints the command that does it by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from btc_trader.local import emulator
from btc_trader.local.run import (
    DEMO_PROFILE,
    SYNTHETIC_END,
    SYNTHETIC_MINUTES,
    RunSummary,
    iso,
    local_run,
)
from btc_trader.stack.environment import PRICE_COLLECTOR
from btc_trader.stack.settings import load_stack_file

WINDOW = "_2023-03-01_2023-03-21.csv.gz"
# name -> file stem in ../shared/data; the last is BTC/USDC on Binance.US, de-pegged on 2023-03-11
VENUES = {"coinbase": "btcusd_1m_coinbase", "kraken": "btcusd_1m_kraken", "binanceus": "btcusd_1m_binanceus",
          "binanceus-usdc": "btcusdc_1m_binanceus"}
REAL_COLLECT_AT = "2023-03-11T12:00:00Z"  # the de-peg: BTC/USDC ~10% above the USD venues
REAL_FROM = "2023-03-10T06:00:00Z"
SYNTHETIC_COLLECT_AT = SYNTHETIC_END - 2 * 86_400
DEMO_TICKS = 48


@dataclass
class DemoOutcome:
    market: str
    collection: dict[str, Any]
    runs: list[RunSummary] = field(default_factory=list)

    @property
    def traded(self) -> RunSummary | None:
        """The run that filled at least one BUY and one SELL (the profile's, or the stack's own)."""
        return next((run for run in reversed(self.runs) if run.trades.get("BUY") and run.trades.get("SELL")), None)


def real_files(data: Path) -> dict[str, Path] | None:
    """The four venues' candle files in `data`, or None when any is missing."""
    files = {name: data / f"{stem}{WINDOW}" for name, stem in VENUES.items()}
    return files if all(path.is_file() for path in files.values()) else None


def _stack_refused(summary: RunSummary) -> str:
    """Why the stack's own settings did not trade, from the run's deciding rules and reasons."""
    refused = sum(summary.rejections.values())
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(summary.rejections.items(), key=lambda kv: -kv[1]))
    top = sorted(summary.refusal_reasons.items(), key=lambda kv: -kv[1])[:2]
    reasons = "; ".join(f"{count}x \"{reason}\"" for reason, count in top)
    return (f"the stack's own settings filled {dict(summary.trades) or 'no trades'}: {refused} of {summary.ticks} "
            f"decisions refused (deciding rules: {rules or '-'}); most often: {reasons or '-'}. That is the "
            "paper-first stack doing its job: its models have not shown an edge (a model no better than "
            "persistence gets weight 0), so it does not trade")


def run_demo(data: Path, port: int | None, emit: Callable[[str], None] = print,
             report: Callable[[RunSummary], None] | None = None, ticks: int = DEMO_TICKS,
             stack: str = "dev") -> DemoOutcome:
    """Collector, the stack's own run, then (if it did not trade) the DEMONSTRATION profile's."""
    from btc_trader.adapters.price_sources import replay_spec
    from btc_trader.local.invoke import invoke, scheduled_event
    from btc_trader.local.synthetic import write_synthetic_candles

    report = report or (lambda summary: emit(json.dumps(summary.to_json())))
    state = emulator.find_running(port, stack)
    port_flag = "" if state.port == emulator.DEFAULT_PORT else f" --port {state.port}"
    files = real_files(data)
    if files is not None:
        market, replay, start, synthetic = "real candles", files["coinbase"], REAL_FROM, False
        collect_at = datetime.fromisoformat(REAL_COLLECT_AT.replace("Z", "+00:00"))
    else:
        emit(f"real candles not found in {data}: the demo runs on the labelled SYNTHETIC series instead "
             "(the same candles on every machine; NOT market data)")
        files = write_synthetic_candles(emulator.state_dir() / "synthetic", SYNTHETIC_END, minutes=SYNTHETIC_MINUTES)
        market, replay, start, synthetic = "SYNTHETIC series (not market data)", None, None, True
        collect_at = datetime.fromtimestamp(SYNTHETIC_COLLECT_AT, UTC)
    replays = " ".join(f"--replay {name}={path}" for name, path in files.items())
    emit(f"\n$ btc-trader local invoke price-collector --at {iso(int(collect_at.timestamp()))} {replays}{port_flag}")
    outcome = invoke(PRICE_COLLECTOR, scheduled_event(collect_at, state.region), state,
                     [replay_spec(name, str(path)) for name, path in files.items()])
    if not outcome["ok"]:
        raise emulator.EmulatorError(f"the collector failed: {outcome['result']}")
    demo = DemoOutcome(market, outcome["result"])
    for result in outcome["result"].get("results", []):
        rejected = "; ".join(f"{venue}: {why}" for venue, why in (result.get("sources_rejected") or {}).items())
        emit(f"collector stored {result.get('symbol')} {result.get('price')} from {', '.join(result.get('sources_used') or [])}"
             f" (prices {json.dumps(result.get('sources'))}); rejected: {rejected or 'none'}")

    market_flag = f"--replay {replay}" if replay else "--synthetic"

    def run(profile: Any, start_epoch: int | None) -> RunSummary:
        profile_flag = f" --profile {profile.name}" if profile else ""
        from_flag = f" --from {iso(start_epoch)}" if start_epoch else ""
        emit(f"\n$ btc-trader local run {market_flag}{from_flag} --ticks {ticks}{profile_flag}{port_flag}")
        summary = local_run(replay, ticks, stack, start_epoch, emit=emit, port=state.port, profile=profile,
                            synthetic=synthetic)
        report(summary)
        demo.runs.append(summary)
        return summary

    own = run(None, int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()) if start else None)
    if own.trades.get("BUY") and own.trades.get("SELL"):
        emit("\nthe stack's own settings traded both ways on this window")
        return demo
    emit(f"\n{_stack_refused(own)}.")
    emit(f"To show the machinery trading anyway, the next {ticks} decisions run under the DEMONSTRATION profile "
         f"{DEMO_PROFILE.name!r}: settings chosen to trade, not a strategy. (The next ones, because a decision "
         "time the stack already predicted keeps its stored prediction, as a retried workflow step does.)")
    settings = load_stack_file(stack)
    last = int(datetime.fromisoformat(own.last_decision.replace("Z", "+00:00")).timestamp())
    run(DEMO_PROFILE, last + settings.trading_interval * 60)
    return demo
