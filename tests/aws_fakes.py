"""Shared helpers for tests that run handlers against moto."""

from __future__ import annotations

import json
from dataclasses import dataclass

import boto3

from btc_trader.storage_schema import TableSpec


@dataclass
class FakeLambdaContext:
    function_name: str = "btc-trader-dev-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:btc-trader-dev-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def create_table(spec: TableSpec, name: str) -> None:
    """A moto table exactly as the emulator (and so the stack) creates it."""
    from btc_trader.local.emulator import create_table as create_stack_table

    create_stack_table(boto3.client("dynamodb"), spec, name)


def emf_records(text: str) -> list[dict]:
    """Every CloudWatch EMF blob printed by Powertools."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def metric_values(records: list[dict], name: str) -> list[tuple[dict, float]]:
    """(dimensions, value) of every emission of metric `name`."""
    found = []
    for record in records:
        names = [m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
        if name in names:
            dims = {k: record[k] for d in record["_aws"]["CloudWatchMetrics"] for ds in d["Dimensions"] for k in ds}
            value = record[name]
            for v in value if isinstance(value, list) else [value]:
                found.append((dims, v))
    return found


def measure_values(records: list, name: str) -> list[tuple[dict, float]]:
    """(dimensions, value) of every log measure `name` (btc_trader.telemetry) among log records
    (pytest's caplog.records). Which function wrote it is the monitoring proof's business
    (tests/emitted_metrics.py reads the JSON lines with their `service`)."""
    from btc_trader.telemetry import CATALOGUE

    dimensions = CATALOGUE[name].dimensions
    return [({key: getattr(record, key) for key in dimensions}, record.value)
            for record in records if getattr(record, "measure", None) == name]


def trading_handlers(monkeypatch, names):
    """The risk manager and trade executor on the dev stack's tables in moto (call inside mock_aws):
    their environment, the kill switch off, the collector's price the prediction was made on
    (2023-03-11T11:59:50Z), and every cache of an earlier test's container cleared."""
    from aws_lambda_powertools.utilities import parameters

    from btc_trader.stack.environment import function_environments, kill_switch_parameter
    from btc_trader.stack.settings import load_stack_file
    from btc_trader.storage_schema import TABLES

    for key, value in function_environments(load_stack_file("dev"), names)["risk-manager"].items():
        monkeypatch.setenv(key, value)
    for spec in TABLES:
        create_table(spec, names.table(spec.role))
    boto3.client("ssm").put_parameter(Name=kill_switch_parameter(names), Value="off", Type="String")
    boto3.client("dynamodb").put_item(TableName=names.table("prices"), Item={
        "symbol": {"S": "BTC-USD"}, "timestamp": {"N": "1678535990"}, "price": {"N": "20000.0"}})
    from functions import risk_manager, trade_executor

    for module in (risk_manager, trade_executor):
        for name in ("_config", "_service"):
            getattr(module, name).cache_clear()
        module.metrics.clear_metrics()
    trade_executor._idempotency.cache_clear()
    parameters.clear_caches()
    return risk_manager, trade_executor
