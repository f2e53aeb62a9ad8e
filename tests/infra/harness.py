"""Run Pulumi programs under mocks and capture every resource with its resolved inputs.

Assertions run in plain Python after the program has finished registering, never inside an
`apply`, so a check can never be silently skipped (see shared/notes/offline-testing.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml

from tests.conftest import REPO_ROOT as PROJECT_ROOT

ACCOUNT = "123456789012"
REGION = "us-east-1"
POWERTOOLS_LAYER = f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:99"


@dataclass
class Captured:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)  # what the mock returned (arn, name, ...)


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    resources: list[Captured] = field(default_factory=list)
    calls: list[tuple[str, dict]] = field(default_factory=list)
    secrets: tuple[str, ...] = ("btc-trader/prod/exchange",)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        captured = Captured(args.typ, args.name, _unwrap_secrets(dict(args.inputs)))
        self.resources.append(captured)
        outputs = dict(args.inputs)
        physical = args.inputs.get("name") or args.inputs.get("bucket") or args.name
        outputs.setdefault("name", physical)
        service = args.typ.split(":")[1].split("/")[0]
        outputs.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{args.typ.split(':')[-1].lower()}/{physical}")
        if args.typ == "aws:s3/bucket:Bucket":
            outputs["arn"] = f"arn:aws:s3:::{physical}"
            outputs.setdefault("bucket", physical)
        if args.typ == "aws:lambda/function:Function":
            outputs["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
        if args.typ == "aws:dynamodb/table:Table":
            outputs["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
        if args.typ == "aws:cloudwatch/logGroup:LogGroup":
            outputs["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}"
        if args.typ == "aws:timestreamwrite/table:Table":
            outputs["arn"] = f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/{args.inputs['databaseName']}/table/{physical}"
        if args.typ == "aws:sfn/stateMachine:StateMachine":
            outputs["arn"] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{physical}"
        captured.outputs = {**_unwrap_secrets(outputs), "id": f"{args.name}-id"}
        return [f"{args.name}-id", outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/test", "userId": "test", "id": ACCOUNT}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION, "description": "US East (N. Virginia)", "endpoint": "ec2.us-east-1.amazonaws.com"}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = [f"{REGION}{letter}" for letter in "abcdef"]
            return {"names": zones, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": REGION,
                    "groupNames": [REGION]}
        if args.token == "aws:ssm/getParameter:getParameter":
            return {"name": args.args["name"], "value": POWERTOOLS_LAYER, "type": "String", "id": args.args["name"],
                    "arn": "arn", "version": 1, "insecureValue": POWERTOOLS_LAYER, "withDecryption": False}
        if args.token == "aws:secretsmanager/getSecret:getSecret":
            name = args.args["name"]
            if name not in self.secrets:
                raise Exception(f"Secrets Manager can't find the specified secret: {name}")
            return {"arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf", "name": name, "id": name}
        return {}

    def of_type(self, type_token: str) -> list[Captured]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name_part: str = "") -> Captured:
        found = [r for r in self.of_type(type_token) if name_part in r.name]
        assert len(found) == 1, f"expected one {type_token} matching {name_part!r}, got {[r.name for r in found]}"
        return found[0]


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value on the wire


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) and "value" in value:
            return _unwrap_secrets(value["value"])
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def stack_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """A stack's YAML config as Pulumi hands it to a program: strings, objects as JSON."""
    document = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text())
    config = dict(document["config"])
    config.update(overrides or {})
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def run_program(stack: str, build: Callable[[], Any], overrides: dict[str, Any] | None = None) -> RecordingMocks:
    """Run `build()` as a Pulumi program for `stack` and return what it registered."""
    _retrieve_failed_futures()  # a previous failed program's futures may have failed since
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="btc-trader", stack=stack, preview=False)
    pulumi.runtime.set_all_config(stack_config(stack, overrides))
    try:
        pulumi.runtime.test(build)()
    except BaseException:
        _retrieve_failed_futures()
        raise
    finally:
        pulumi.runtime.set_all_config({})
    return mocks


def _retrieve_failed_futures() -> None:
    """Mark the futures a failed program left behind as retrieved.

    When a mock call fails (the tests of refusals make them fail on purpose), every output that
    depends on it fails too, and Pulumi never awaits those futures: asyncio would print
    "Future exception was never retrieved" with a traceback for each when they are collected,
    thousands of lines burying the test result. The failure itself is raised to the test.
    """
    import asyncio
    import gc

    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Future) and obj.done() and not obj.cancelled():
            obj.exception()  # reading it is what "retrieved" means


def policy_statements(policy: Any) -> list[dict[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy
    return document["Statement"]
