"""CPU per request of the local emulator, for the DynamoDB calls a `local run` decision makes.

Starts the emulator (`python -m btc_trader.local.server`) on a free port once per serving mode,
fills a table with one 200-item partition, then times `--requests` GetItem, PutItem (with a
ConditionExpression, as the handlers write) and Query (a key condition on the sort key, Limit 20)
through one boto3 client, as a handler makes them. Reports, per request, the emulator's CPU
(utime + stime from /proc) and this process's CPU (botocore's side of the same request), the
median of several rounds in which the modes take turns. On a shared machine quote these CPU
figures; wall time moves with the load.

Serving modes (server.py --serving): moto (moto's own werkzeug server, what `local up` ran
before), waitress (moto's app as is under waitress: keep-alive, a thread pool), routed (+ the
routing remembered), fast (+ DynamoDB's JSON calls straight to moto's handler; the default).

    python benchmarks/emulator_request_bench.py [--requests 300] [--rounds 5] [--modes moto,fast] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from measuring import cpu_seconds  # noqa: E402 - the benchmarks' own folder is on the path when run as a script

MODES = ("moto", "waitress", "routed", "fast")
TABLE = "bench"
PARTITION_ITEMS = 200


def _start(mode: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    from btc_trader.local import emulator

    with socket.socket() as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = emulator.spawn_server(port, log, mode)
    try:
        emulator.wait_until_serving(process, port, log)
    except emulator.EmulatorError as exc:
        raise SystemExit(f"the emulator ({mode}) did not start: {exc}") from None
    return process, port


def _operations(client: Any) -> dict[str, Callable[[int], Any]]:
    def key(i: int) -> dict[str, Any]:
        return {"pk": {"S": "BTC-USD"}, "sk": {"N": str(i % PARTITION_ITEMS)}}

    return {
        "GetItem": lambda i: client.get_item(TableName=TABLE, Key=key(i)),
        "PutItem": lambda i: client.put_item(
            TableName=TABLE, Item=key(i) | {"price": {"N": "20123.5"}, "version": {"N": str(i)}},
            ConditionExpression="attribute_not_exists(pk) OR version < :v",
            ExpressionAttributeValues={":v": {"N": str(10**9)}}),
        "Query": lambda i: client.query(
            TableName=TABLE, KeyConditionExpression="pk = :p AND sk >= :s",
            ExpressionAttributeValues={":p": {"S": "BTC-USD"}, ":s": {"N": str(i % 150)}}, Limit=20),
    }


class Emulator:
    """One emulator process of a serving mode, with the table the requests use."""

    def __init__(self, mode: str, log: Path) -> None:
        import boto3

        self.mode = mode
        self.process, port = _start(mode, log)
        self.client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        self.client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                            {"AttributeName": "sk", "KeyType": "RANGE"}],
                                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                       {"AttributeName": "sk", "AttributeType": "N"}])
        self.operations = _operations(self.client)
        for i in range(PARTITION_ITEMS):  # fills the partition, and warms both sides
            self.operations["PutItem"](i)
        for operation in self.operations.values():
            for i in range(20):
                operation(i)

    def measure(self, name: str, requests: int) -> dict[str, float]:
        """Server and client CPU (ms) and wall time per request of `requests` calls of one operation."""
        operation = self.operations[name]
        server_before, client_before = cpu_seconds(self.process.pid), time.process_time()
        wall_before = time.perf_counter()
        for i in range(requests):
            operation(i)
        return {
            "server_cpu_ms": (cpu_seconds(self.process.pid) - server_before) / requests * 1000,
            "client_cpu_ms": (time.process_time() - client_before) / requests * 1000,
            "wall_ms": (time.perf_counter() - wall_before) / requests * 1000,
        }

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)  # as `local down` stops it
        self.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per operation per round")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds; each measures every mode in turn, and the median round is reported")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise SystemExit(f"unknown --modes {', '.join(unknown)}: choose from {', '.join(MODES)}")
    log = Path(tempfile.mkdtemp(prefix="btc-trader-emulator-bench-")) / "emulator.log"
    emulators = [Emulator(mode, log) for mode in modes]
    rounds: dict[str, dict[str, list[dict[str, float]]]] = {mode: {} for mode in modes}
    try:
        # Modes take turns within each round, so a change in the machine's load touches them all.
        for _ in range(args.rounds):
            for emulator in emulators:
                for name in emulator.operations:
                    rounds[emulator.mode].setdefault(name, []).append(emulator.measure(name, args.requests))
    finally:
        for emulator in emulators:
            emulator.stop()
    results = {mode: {name: {figure: round(statistics.median(r[figure] for r in measured), 3)
                             for figure in measured[0]}
                      for name, measured in by_operation.items()}
               for mode, by_operation in rounds.items()}
    print(f"per request, median of {args.rounds} rounds of {args.requests}; emulator log: {log}")
    print(f"{'mode':<9} {'operation':<8} {'server CPU ms':>13} {'client CPU ms':>13} {'wall ms':>8}")
    for mode, by_operation in results.items():
        for name, figures in by_operation.items():
            print(f"{mode:<9} {name:<8} {figures['server_cpu_ms']:>13.3f} {figures['client_cpu_ms']:>13.3f} "
                  f"{figures['wall_ms']:>8.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"requests": args.requests, "rounds": args.rounds, "modes": results},
                                             indent=2) + "\n")


if __name__ == "__main__":
    main()
