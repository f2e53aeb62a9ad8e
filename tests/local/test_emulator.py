"""`btc-trader local up/status/down` and what the emulator holds."""

import json
import socket
from pathlib import Path

import boto3
import pytest

from btc_trader.cli import main
from btc_trader.local import emulator
from btc_trader.storage_schema import TABLES
from tests.local.conftest import free_port


def test_up_creates_every_resource_of_the_stack(running_emulator, home):
    names = running_emulator.names
    held = emulator.resources(running_emulator)
    assert held["tables"] == sorted(names.table(spec.role) for spec in TABLES)
    assert held["buckets"] == [names.raw_bucket]
    assert held["topics"] == [f"arn:aws:sns:us-east-1:123456789012:{names.alerts_topic}"]
    client = boto3.client("dynamodb", endpoint_url=running_emulator.endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    for spec in TABLES:
        table = client.describe_table(TableName=names.table(spec.role))["Table"]
        assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
            spec.hash_key.name: "HASH", **({spec.range_key.name: "RANGE"} if spec.range_key else {})
        }
        ttl = client.describe_time_to_live(TableName=names.table(spec.role))["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == spec.ttl_attribute


def test_up_again_is_idempotent_and_status_finds_it(running_emulator, home, capsys):
    assert main(["local", "up", "--port", str(running_emulator.port)]) == 0
    assert "already running" in capsys.readouterr().out
    assert main(["local", "status"]) == 0
    out = capsys.readouterr().out
    assert f"running: stack dev at {running_emulator.endpoint}" in out
    assert running_emulator.names.table("prices") in out
    assert emulator.find_running() == running_emulator
    assert json.loads((home / f"emulator-{running_emulator.port}.json").read_text())["stack"] == "dev"


def test_binds_loopback_only(running_emulator):
    proc_net = Path("/proc/net/tcp")
    if not proc_net.exists():
        pytest.skip("no /proc/net/tcp on this platform")
    port_hex = f"{running_emulator.port:04X}"
    listening = [
        line.split()[1] for line in proc_net.read_text().splitlines()[1:]
        if line.split()[1].endswith(f":{port_hex}") and line.split()[3] == "0A"
    ]
    assert listening == [f"0100007F:{port_hex}"], "the emulator must listen on 127.0.0.1 only"


def test_other_stack_on_the_same_port_is_refused(running_emulator, home, capsys):
    assert main(["local", "up", "--stack", "prod", "--port", str(running_emulator.port)]) == 2
    assert "already runs on port" in capsys.readouterr().err


def test_port_in_use_by_another_program(home, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["local", "up", "--port", str(port)]) == 2
    assert f"port {port} is in use" in capsys.readouterr().err


def test_lifecycle_down_and_dead_emulator(home, capsys):
    port = free_port()
    assert main(["local", "up", "--port", str(port)]) == 0
    state = emulator.read_state(port)
    assert emulator.is_running(state)
    assert main(["local", "down", "--port", str(port)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert emulator.read_state(port) is None
    assert main(["local", "down", "--port", str(port)]) == 0
    assert "no local emulator recorded" in capsys.readouterr().out
    # A state file whose process died is reported as dead, not used.
    (home / f"emulator-{port}.json").write_text(json.dumps({**state.__dict__}))
    assert main(["local", "status", "--port", str(port)]) == 0
    assert "dead:" in capsys.readouterr().out
    assert main(["local", "invoke", "price-collector", "--port", str(port)]) == 2
    assert "no local emulator is running on port" in capsys.readouterr().err
    emulator.stop(port)


def test_invalid_stack_fails_before_starting(home, capsys):
    assert main(["local", "up", "--stack", "staging", "--port", str(free_port())]) == 2
    assert "Pulumi.staging.yaml not found" in capsys.readouterr().err
