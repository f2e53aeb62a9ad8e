"""The monthly cost of a stack, from its settings and a dated price table — before `pulumi up`.

Pure: settings and prices in, itemised lines out. Quantities come from the settings (schedules,
models, memory, retention, symbols, venues), from the code (the state machine's path through its
ASL, the metric catalogue of the dashboard, the alarms) and from a few measured workload figures
(`Workload`: log bytes per invocation measured on `btc-trader local run`, history bytes per
prediction measured by benchmarks/prediction_bench.py, durations assumed and stated). Totals are
list prices; the account's CloudWatch free tier (10 custom metrics, 3 dashboards, 10 alarm
metrics, shared by every stack of the account) is shown apart and never subtracted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from btc_trader.stack.naming import FUNCTION_ROLES, ResourceNames
from btc_trader.stack.settings import StackSettings
from btc_trader.telemetry import LOG_WIDGETS, series_count

PRICE_DIR = Path(__file__).resolve().parent / "pricing"
HOURS_PER_MONTH = 730
MINUTES_PER_MONTH = HOURS_PER_MONTH * 60
CHARS_PER_TOKEN = 3.5  # Claude's tokenizer on number-heavy English; the prompt is built by the real code


class CostError(ValueError):
    """The estimate cannot be made (unknown model price, no price table for the region)."""


@cache
def load_prices(region: str = "us-east-1") -> dict[str, Any]:
    path = PRICE_DIR / f"{region}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in PRICE_DIR.glob("*.yaml"))
        raise CostError(f"no price table for region {region} in {PRICE_DIR} (have: {', '.join(available)})")
    return yaml.safe_load(path.read_text())


@dataclass(frozen=True)
class Workload:
    """What one invocation costs besides its schedule: durations (s), log bytes, items read."""

    duration_s: dict[str, float] = field(default_factory=lambda: {
        "price-collector": 1.5,  # venues fetched in parallel, 5 s timeout
        "ml-predictor": 0.4,  # + each enabled remote model's latency, below
        "prediction-evaluator": 0.4, "risk-manager": 0.2, "trade-executor": 0.3,
    })
    model_latency_s: dict[str, float] = field(default_factory=lambda: {"bedrock": 2.5, "huggingface": 1.0})
    # Measured: 48 ticks of `btc-trader local run` on the de-peg replay (Powertools JSON logs with the
    # log measures, EMF of the alarmed metrics), plus ~350 bytes of the Lambda platform's
    # START/END/REPORT lines. The executor did not trade in that run: its figure is its earlier
    # measurement with its three measures as log lines instead of EMF.
    log_bytes: dict[str, int] = field(default_factory=lambda: {
        "price-collector": 2_300, "ml-predictor": 3_400, "prediction-evaluator": 2_000,
        "risk-manager": 2_250, "trade-executor": 2_300,
    })
    history_bytes_per_prediction: int = 9_200  # measured: 383 items, 2 attributes (prediction_bench.py)
    history_extra_seconds: float = 0.0
    output_tokens: int = 150  # a JSON forecast with a one-sentence reason
    prompt_chars: int = 1_352  # build_prompt() with 48 bars, measured
    chronos_inference_s: float = 1.0
    chronos_memory_gb: float = 4.0  # the endpoint's serverless memory
    sagemaker_realtime_instance: str | None = None  # the original design's always-on endpoint
    raw_payload_bytes: int = 6_000  # one JSON object per collection and symbol, every venue's body
    price_item_bytes: int = 600
    trades_per_day: float | None = None  # None: the stack's maxTradesPerDay (an upper bound)
    # Logs Insights scans a widget's log group over the dashboard's range (24 h) each time the
    # dashboard is opened or refreshed; a stated habit, not a measurement.
    dashboard_views_per_day: int = 10
    dashboard_range_hours: int = 24


@dataclass(frozen=True)
class CostLine:
    service: str
    item: str
    quantity: float
    unit: str
    usd: float


@dataclass
class CostEstimate:
    title: str
    region: str
    lines: list[CostLine]
    notes: list[str]

    def by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.service] = totals.get(line.service, 0.0) + line.usd
        return {k: round(v, 2) for k, v in totals.items()}

    @property
    def total(self) -> float:
        return round(sum(line.usd for line in self.lines), 2)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "region": self.region, "total_usd_month": self.total,
                "by_service": self.by_service(),
                "lines": [line.__dict__ | {"usd": round(line.usd, 4)} for line in self.lines], "notes": self.notes}


def workflow_transitions() -> dict[str, int]:
    """State transitions of one execution, walked through the deployed ASL (scheduled start)."""
    from btc_trader.workflow import trading_workflow

    states = trading_workflow("predict", "risk", "execute", "topic", state_table="state")["States"]
    paths = {}
    for outcome, approved in (("rejected", False), ("traded", True)):
        state, count = "HasClock", 0
        while state:
            count += 1
            spec = states[state]
            if spec["Type"] == "Choice":
                if state == "HasClock":
                    state = spec["Default"]  # a scheduled run carries no clock: Stamp
                else:
                    state = spec["Choices"][0]["Next"] if approved else spec["Default"]
            else:
                state = None if spec.get("End") or spec["Type"] in {"Succeed", "Fail"} else spec["Next"]
        paths[outcome] = count
    return paths


def _bedrock_price(prices: dict[str, Any], model_id: str) -> dict[str, float]:
    table = prices["bedrock"]
    for key, value in table.items():
        if key in model_id:
            return value
    raise CostError(f"no Bedrock price for {model_id!r} in the price table (have: {', '.join(table)}); "
                    "add it to btc_trader/pricing/<region>.yaml")


def custom_metric_count(settings: StackSettings) -> int:
    """Custom metric series: one per catalogued metric and dimension values (btc_trader.telemetry);
    log measures cost no series. CloudWatch bills each series a month."""
    return series_count({"model": len(settings.ml_models), "symbol": len(settings.symbols)})


# Free tier of CloudWatch, per account and month (shared by every stack in the account).
FREE_CUSTOM_METRICS, FREE_DASHBOARDS, FREE_ALARM_METRICS = 10, 3, 10


def alarm_metric_count(settings: StackSettings) -> int:
    """Metrics the Monitoring component's alarms watch (CloudWatch bills alarms per metric)."""
    no_price = len(settings.symbols)
    workflow = 3  # failed + timed out + aborted executions, in one metric-math alarm
    error_rates = len(FUNCTION_ROLES) * 2  # errors and invocations of each function
    return no_price + workflow + error_rates + 1 + 1 + len(settings.ml_models)  # + drawdown, kill switch, skills


def logs_insights_scanned_gb(settings: StackSettings, invocations: dict[str, float], work: Workload) -> float:
    """GB a month the dashboard's Logs Insights widgets scan: each widget reads its function's log
    group over the dashboard's range, at every view."""
    widgets_per_function: dict[str, int] = {}
    for widget in LOG_WIDGETS:
        if widget.only_with_model in (None, *settings.ml_models):
            widgets_per_function[widget.service] = widgets_per_function.get(widget.service, 0) + 1
    per_view = sum(
        count * invocations[function] / MINUTES_PER_MONTH * 60 * work.dashboard_range_hours * work.log_bytes[function]
        for function, count in widgets_per_function.items()
    )
    return per_view * work.dashboard_views_per_day * 30.4 / 1e9


def estimate(settings: StackSettings, names: ResourceNames, prices: dict[str, Any] | None = None,
             workload: Workload | None = None, title: str = "") -> CostEstimate:
    prices = prices or load_prices(names.region if (PRICE_DIR / f"{names.region}.yaml").is_file() else "us-east-1")
    work = workload or Workload()
    notes = [f"list prices of {prices['region']} as of {prices['as_of']} (btc_trader/pricing/), free tier not subtracted"]
    if prices["region"] != names.region:
        notes.append(f"the stack's region is {names.region}; the estimate uses {prices['region']}'s prices")
    lines: list[CostLine] = []

    def add(service: str, item: str, quantity: float, unit: str, usd: float) -> None:
        lines.append(CostLine(service, item, round(quantity, 2), unit, usd))

    symbols = len(settings.symbols)
    collections = MINUTES_PER_MONTH / settings.price_collection_interval
    decisions = MINUTES_PER_MONTH / settings.trading_interval * symbols
    trades_per_day = work.trades_per_day if work.trades_per_day is not None else settings.max_trades_per_day
    trades = min(decisions, trades_per_day * 30.4 * symbols)
    models = set(settings.ml_models)
    predictor_s = work.duration_s["ml-predictor"] + work.history_extra_seconds + max(
        [work.model_latency_s.get(m, 0.0) for m in models], default=0.0)  # models run in parallel
    invocations = {"price-collector": collections, "ml-predictor": decisions, "prediction-evaluator": decisions / symbols,
                   "risk-manager": decisions, "trade-executor": trades}
    durations = dict(work.duration_s) | {"ml-predictor": predictor_s}
    memory_gb = settings.lambda_settings.memory_mb / 1024
    gb_s_price = prices["lambda"]["gb_second"][settings.lambda_settings.architecture]
    for function, count in invocations.items():
        gb_s = count * durations[function] * memory_gb
        add("Lambda", f"{function}: {count:,.0f} invocations x {durations[function]:g} s x {memory_gb:g} GB",
            count, "invocations", count / 1e6 * prices["lambda"]["request_per_million"] + gb_s * gb_s_price)

    transitions = workflow_transitions()
    total_transitions = (decisions - trades) * transitions["rejected"] + trades * transitions["traded"]
    add("Step Functions", f"{decisions:,.0f} executions, {transitions['rejected']} transitions "
        f"({transitions['traded']} when trading)", total_transitions, "transitions",
        total_transitions / 1000 * prices["stepfunctions"]["standard_transition_per_thousand"])

    ddb = prices["dynamodb"]
    history_rru = math.ceil(work.history_bytes_per_prediction / 4096) * 0.5  # eventually consistent
    writes = collections * symbols * 2 + decisions * (2 + 1) + trades * 6 + decisions / symbols * 2
    reads = collections * symbols + decisions * (history_rru + 2) + trades * 3 + decisions / symbols * 2
    add("DynamoDB", f"writes (prices, predictions, state, trades, scores); {history_rru:g} RRU of history "
        "per prediction", writes, "write units", writes / 1e6 * ddb["write_request_unit_per_million"])
    add("DynamoDB", "reads", reads, "read units", reads / 1e6 * ddb["read_request_unit_per_million"])
    stored_gb = collections * symbols * work.price_item_bytes * settings.price_retention_days / 30.4 / 1e9
    add("DynamoDB", f"storage + PITR, prices kept {settings.price_retention_days} d", stored_gb, "GB",
        stored_gb * (ddb["storage_gb_month"] + ddb["pitr_gb_month"]))

    s3 = prices["s3"]
    objects = collections * symbols
    hot_gb = objects * work.raw_payload_bytes * min(settings.raw_archive_after_days, 30.4) / 30.4 / 1e9
    cold_gb = objects * work.raw_payload_bytes * max(0, settings.raw_expire_after_days - settings.raw_archive_after_days) / 30.4 / 1e9
    add("S3", f"{objects:,.0f} raw payloads; Glacier after {settings.raw_archive_after_days} d", objects, "PUTs",
        objects / 1000 * s3["put_per_thousand"] + hot_gb * s3["standard_gb_month"]
        + cold_gb * s3["glacier_flexible_gb_month"])

    if settings.timestream.enabled:
        ts = prices["timestream"]
        records = collections * symbols * (1 + len(settings.price_sources))
        memory_gb = records * 200 / 1e9 * settings.timestream.memory_retention_hours / HOURS_PER_MONTH
        add("Timestream", "records (price + each venue) and memory store", records, "writes",
            records / 1e6 * ts["writes_per_million_1kb"] + memory_gb * HOURS_PER_MONTH * ts["memory_gb_hour"])

    sns = prices["sns"]
    publishes = trades + 30  # trade notifications + a margin of alarms
    add("SNS", "trade notifications and alarms", publishes, "publishes",
        publishes / 1e6 * sns["publish_per_million"]
        + (publishes / 1e5 * sns["email_per_hundred_thousand"] if settings.alert_email else 0.0))

    cw = prices["cloudwatch"]
    log_gb = sum(invocations[f] * work.log_bytes[f] for f in invocations) / 1e9
    retained_gb = log_gb * min(settings.log_retention_days, 30.4) / 30.4
    add("CloudWatch", f"logs ingested, kept {settings.log_retention_days} d", log_gb, "GB",
        log_gb * cw["logs_ingest_gb"] + retained_gb * cw["logs_storage_gb_month"])
    metric_count = custom_metric_count(settings)
    add("CloudWatch", "custom metrics (EMF): only what an alarm watches", metric_count, "metrics",
        metric_count * cw["custom_metric_month"])
    add("CloudWatch", "dashboard", 1, "dashboards", cw["dashboard_month"])
    scanned_gb = logs_insights_scanned_gb(settings, invocations, work)
    add("CloudWatch", f"Logs Insights widgets: {work.dashboard_views_per_day} dashboard views a day over "
        f"{work.dashboard_range_hours} h", scanned_gb, "GB scanned", scanned_gb * cw["logs_insights_scanned_gb"])
    alarm_metrics = alarm_metric_count(settings)
    add("CloudWatch", "alarms (per metric watched)", alarm_metrics, "alarm metrics",
        alarm_metrics * cw["alarm_metric_month"])
    free = (min(metric_count, FREE_CUSTOM_METRICS) * cw["custom_metric_month"] + cw["dashboard_month"]
            + min(alarm_metrics, FREE_ALARM_METRICS) * cw["alarm_metric_month"])
    notes.append(f"CloudWatch free tier, not subtracted: {FREE_CUSTOM_METRICS} custom metrics, {FREE_DASHBOARDS} "
                 f"dashboards and {FREE_ALARM_METRICS} alarm metrics per account would cover {free:.2f} USD of this "
                 "if no other stack or application in the account uses them")
    traces = sum(invocations.values())
    add("X-Ray", "traces of every invocation", traces, "traces",
        traces / 1e6 * prices["xray"]["traces_recorded_per_million"])

    if "bedrock" in models:
        price = _bedrock_price(prices, settings.bedrock.model_id)
        input_tokens = math.ceil(work.prompt_chars / CHARS_PER_TOKEN) + 60  # + the system prompt
        output_tokens = min(work.output_tokens, settings.bedrock.max_tokens)
        usd = decisions * (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6
        add("Bedrock", f"{settings.bedrock.model_id}: {input_tokens} in + {output_tokens} out tokens per call",
            decisions, "calls", usd)
    if "huggingface" in models:
        sm = prices["sagemaker"]
        if work.sagemaker_realtime_instance:
            instance = work.sagemaker_realtime_instance
            add("SageMaker", f"real-time endpoint, one {instance} 24x7", HOURS_PER_MONTH, "instance hours",
                HOURS_PER_MONTH * sm["realtime_hour"][instance])
        else:
            gb_s = decisions * work.chronos_inference_s * work.chronos_memory_gb
            add("SageMaker", f"serverless Chronos, {work.chronos_inference_s:g} s x {work.chronos_memory_gb:g} GB "
                "per call, nothing when idle", decisions, "calls", gb_s * sm["serverless_gb_second"])

    if settings.enable_real_trading and settings.exchange.secret_name:
        add("Secrets Manager", "the exchange keys", 1, "secrets", prices["secretsmanager"]["secret_month"])
    if settings.network.vpc:
        vpc, network = prices["vpc"], settings.network
        nat = network.nat_gateways * HOURS_PER_MONTH * (vpc["nat_gateway_hour"] + vpc["public_ipv4_hour"])
        endpoints = len(network.interface_endpoints) * network.azs * HOURS_PER_MONTH * vpc["interface_endpoint_hour_per_az"]
        processed_gb = (log_gb + objects * work.raw_payload_bytes / 1e9) * 2  # venue and AWS traffic, roughly
        add("VPC", f"{network.nat_gateways} NAT gateway(s) with public IPv4, "
            f"{len(network.interface_endpoints)} interface endpoint(s) in {network.azs} AZs", network.nat_gateways,
            "NAT gateways", nat + endpoints + processed_gb * vpc["nat_processed_gb"])
    kms = prices["kms"]
    add("KMS", "the alerts topic's key, with rotation", 1, "keys",
        kms["key_month"] + publishes * 2 / 1e4 * kms["requests_per_ten_thousand"])
    return CostEstimate(title or f"{names.stack} stack", prices["region"], lines, notes)


# The original design (../shared/DESIGN.md): 1-minute collection, 5-minute trading, all three
# models, an unpaginated 30-day history read per prediction, a real-time SageMaker endpoint on an
# ml.m5.xlarge around the clock, Claude 3 Sonnet.
ORIGINAL_HISTORY_BYTES = 10_760_000  # measured: 43,200 items of 30 days read whole (prediction_bench.py)


def original_design(settings: StackSettings) -> tuple[StackSettings, Workload]:
    bedrock = settings.bedrock.model_copy(update={"model_id": "anthropic.claude-3-sonnet-20240229-v1:0"})
    original = settings.model_copy(update={
        "price_collection_interval": 1, "trading_interval": 5, "ml_models": ("bedrock", "huggingface", "custom"),
        "bedrock": bedrock,
    })
    workload = replace(Workload(), history_bytes_per_prediction=ORIGINAL_HISTORY_BYTES,
                       history_extra_seconds=3.0, sagemaker_realtime_instance="ml.m5.xlarge")
    return original, workload


SERVICES = ("Lambda", "Step Functions", "DynamoDB", "S3", "Timestream", "SNS", "CloudWatch", "X-Ray", "Bedrock",
            "SageMaker", "Secrets Manager", "VPC", "KMS")


def render_table(estimates: list[CostEstimate]) -> str:
    """A Markdown table: services as rows, one column per estimate, totals last."""
    present = {service for estimate in estimates for service in estimate.by_service()}
    services = [s for s in SERVICES if s in present]
    header = "| service | " + " | ".join(e.title for e in estimates) + " |"
    rows = [header, "|---|" + "---:|" * len(estimates)]
    for service in services:
        cells = [f"{e.by_service().get(service, 0.0):,.2f}" for e in estimates]
        rows.append(f"| {service} | " + " | ".join(cells) + " |")
    rows.append("| **total (USD / month)** | " + " | ".join(f"**{e.total:,.2f}**" for e in estimates) + " |")
    return "\n".join(rows)


README_BEGIN, README_END = "<!-- cost:begin -->", "<!-- cost:end -->"


def readme_table() -> str:
    """The README's cost table: dev, prod, and the original design (from prod's settings)."""
    from btc_trader.stack.settings import load_stack_file, stack_region

    columns = []
    for stack in ("dev", "prod"):
        names = ResourceNames(stack, "123456789012", stack_region(stack))
        columns.append(estimate(load_stack_file(stack), names, title=f"{stack} stack"))
    original, workload = original_design(load_stack_file("prod"))
    names = ResourceNames("prod", "123456789012", stack_region("prod"))
    columns.append(estimate(original, names, workload=workload, title="original design"))
    prices = load_prices("us-east-1")
    series = {stack: custom_metric_count(load_stack_file(stack)) for stack in ("dev", "prod")}
    return (render_table(columns) + f"\n\nList prices of {prices['region']} as of {prices['as_of']}, free tier not subtracted; "
            f"prod costs {columns[1].total / columns[2].total:.0%} of the original design. Custom metric series: "
            f"dev {series['dev']}, prod {series['prod']} (only what an alarm watches).")


def main() -> None:
    """`python -m btc_trader.cost`: rewrite the README's cost table from the code."""
    from btc_trader.stack.project import find_project_root

    readme = find_project_root() / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition(README_BEGIN)
    _, _, tail = rest.partition(README_END)
    readme.write_text(f"{head}{README_BEGIN}\n{readme_table()}\n{README_END}{tail}")
    print(f"wrote the cost table (dev, prod and the original design) to {readme}")


if __name__ == "__main__":
    main()
