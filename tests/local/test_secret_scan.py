"""The exchange keys never leave Secrets Manager: a whole local run is scanned for them."""

from __future__ import annotations

import json

import boto3

from btc_trader.local import emulator
from btc_trader.local.run import local_run
from btc_trader.stack.settings import load_stack_file
from tests.local.conftest import free_port

SECRET = "sk-LIVE-7f3a9c2e5b1d4f60a8e2c9b7d3f1a5e4"  # recognisable, fake


def test_no_trace_of_the_exchange_secret_anywhere(home, capsys):
    port = free_port()
    state, _ = emulator.start("prod", port)
    try:
        secret_name = load_stack_file("prod").exchange.secret_name
        with emulator.aws_environment(state):
            secrets = boto3.client("secretsmanager")
            secrets.put_secret_value(SecretId=secret_name,
                                     SecretString=json.dumps({"apiKey": "key-" + SECRET, "secret": SECRET}))
            lines = []
            summary = local_run(None, 3, stack="prod", port=port, online=lambda: False, emit=lines.append)
            assert summary.executions == {"SUCCEEDED": 3}
            seen = ["\n".join(lines), json.dumps(summary.to_json()), capsys.readouterr().out]
            seen += [path.read_text() for path in (home / "logs" / "prod").glob("*.jsonl")]
            dynamodb = boto3.client("dynamodb")
            for table in dynamodb.list_tables()["TableNames"]:
                seen.append(json.dumps(dynamodb.scan(TableName=table)["Items"], default=str))
            s3 = boto3.client("s3")
            for bucket in s3.list_buckets()["Buckets"]:
                for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
                    seen.append(s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read().decode())
            for function in boto3.client("lambda").list_functions()["Functions"]:
                seen.append(json.dumps(function.get("Environment", {})))
        assert len(seen) > 10 and any("price collected" in text for text in seen)  # the scan saw the run
        assert not any(SECRET in text for text in seen)
    finally:
        emulator.stop(port)
