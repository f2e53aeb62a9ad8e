"""The emulator's fast serving answers as moto's own server does (status, error, headers, body).

Two emulator processes on 127.0.0.1: one served by moto's own server (werkzeug's, as `local up`
ran before), one by waitress with the routing remembered and DynamoDB's JSON calls sent straight
to moto's handler (the default). The same corpus of requests, successful and failing, goes to
both through boto3; every raw HTTP answer is compared once the values that differ between any
two runs (request ids, dates, creation times) are masked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from btc_trader.local import emulator, serving
from tests.local.conftest import free_port

TABLE = "parity"
BUCKET = "parity-bucket"
# Headers only one of the servers sends, or whose values are per run.
SERVER_HEADERS = {"server", "date", "connection", "via", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2",
                  "x-amz-crc32", "last-modified"}
VOLATILE_JSON = re.compile(r'"(CreationDateTime|LastUpdateToPayPerRequestDateTime|LastDecreaseDateTime|'
                           r'LastIncreaseDateTime)": [0-9.e+]+')
VOLATILE_XML = re.compile(r"<(LastModified|CreationDate|RequestId|HostId)>[^<]*</\1>")


def _start(serving_mode: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = emulator.spawn_server(port, log, serving_mode)
    try:
        emulator.wait_until_serving(process, port, log, timeout_s=60)
    except emulator.EmulatorError as exc:
        pytest.fail(f"the {serving_mode} emulator did not start: {exc}")
    return process, port


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """moto's own server and the fast one, each in its own process; stopped as `local down` does."""
    log = tmp_path_factory.mktemp("serving") / "emulators.log"
    started = {mode: _start(mode, log) for mode in ("moto", "fast")}
    yield {mode: port for mode, (_, port) in started.items()}
    for process, _ in started.values():
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=10)


class Recorder:
    """boto3 clients of one emulator, keeping every raw HTTP answer they receive."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[tuple[str, int, dict[str, str], bytes]] = []
        self._clients: dict[str, object] = {}

    def client(self, service: str):
        if service not in self._clients:
            client = boto3.client(service, endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing",
                                  config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
            client.meta.events.register("after-call", self._record)
            client.meta.events.register("after-call-error", self._record_error)
            self._clients[service] = client
        return self._clients[service]

    def _record(self, http_response, model, **_kwargs) -> None:
        headers = dict(http_response.headers.items())  # names as sent: their case reaches boto3's results
        # A streamed body (S3 GetObject) is read by the caller; `_call` records it then.
        content = b"" if model.has_streaming_output and http_response.status_code < 300 else http_response.content
        self.answers.append((model.name, http_response.status_code, headers, content))

    def _record_error(self, exception, **_kwargs) -> None:
        self.answers.append(("transport error", 0, {}, repr(exception).encode()))


def _call(recorder: Recorder, service: str, operation: str, **params) -> dict | str:
    """One request; its parsed answer, or the error code boto3 raised."""
    try:
        result = getattr(recorder.client(service), operation)(**params)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    if "Body" in result:
        result["Body"] = result["Body"].read()
        name, status, headers, _ = recorder.answers[-1]
        recorder.answers[-1] = (name, status, headers, result["Body"])
    return result


def run_corpus(recorder: Recorder) -> list:
    """The corpus: the storage calls `local run` makes, and the ways they fail."""
    key_schema = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}]
    outcomes = [
        _call(recorder, "dynamodb", "create_table", TableName=TABLE, KeySchema=key_schema,
              AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST"),
        _call(recorder, "dynamodb", "create_table", TableName=TABLE, KeySchema=key_schema,
              AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST"),  # ResourceInUseException
    ]
    for i in range(7):
        outcomes.append(_call(recorder, "dynamodb", "put_item", TableName=TABLE,
                              Item={"pk": {"S": "BTC-USD"}, "sk": {"N": str(100 + i * 15)},
                                    "price": {"N": f"2{i}123.45"}, "tags": {"SS": ["a", f"t{i}"]},
                                    "doc": {"M": {"ok": {"BOOL": True}, "none": {"NULL": True},
                                                  "raw": {"B": bytes([i, 255])}}}}))
    item_key = {"pk": {"S": "BTC-USD"}, "sk": {"N": "115"}}
    outcomes += [
        _call(recorder, "dynamodb", "put_item", TableName=TABLE, Item=item_key | {"v": {"N": "1"}},
              ConditionExpression="attribute_not_exists(pk)"),  # ConditionalCheckFailedException
        _call(recorder, "dynamodb", "put_item", TableName=TABLE, Item=item_key | {"v": {"N": "1"}},
              ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        _call(recorder, "dynamodb", "put_item", TableName=TABLE, Item={"pk": {"S": "BTC-USD"}}),  # ValidationException
        _call(recorder, "dynamodb", "put_item", TableName=TABLE, Item=item_key,
              ConditionExpression="price >"),  # ValidationException: the expression does not parse
        _call(recorder, "dynamodb", "get_item", TableName="missing", Key=item_key),  # ResourceNotFoundException
        _call(recorder, "dynamodb", "get_item", TableName=TABLE, Key=item_key),
        _call(recorder, "dynamodb", "get_item", TableName=TABLE, Key={"pk": {"S": "BTC-USD"}, "sk": {"N": "1"}}),
        _call(recorder, "dynamodb", "get_item", TableName=TABLE, Key=item_key, ConsistentRead=True,
              ProjectionExpression="price, #d.ok", ExpressionAttributeNames={"#d": "doc"}),
        _call(recorder, "dynamodb", "update_item", TableName=TABLE, Key=item_key,
              UpdateExpression="SET price = price + :d, note = :n REMOVE tags",
              ExpressionAttributeValues={":d": {"N": "1.5"}, ":n": {"S": "updated"}}, ReturnValues="ALL_NEW"),
        _call(recorder, "dynamodb", "update_item", TableName=TABLE, Key=item_key,
              UpdateExpression="SET price = :p", ConditionExpression="note = :other",
              ExpressionAttributeValues={":p": {"N": "1"}, ":other": {"S": "x"}}),  # ConditionalCheckFailed
    ]
    page = _call(recorder, "dynamodb", "query", TableName=TABLE, Limit=2,
                 KeyConditionExpression="pk = :p AND sk >= :s",
                 ExpressionAttributeValues={":p": {"S": "BTC-USD"}, ":s": {"N": "110"}})
    outcomes.append(page)
    outcomes.append(_call(recorder, "dynamodb", "query", TableName=TABLE, Limit=2, ScanIndexForward=False,
                          KeyConditionExpression="pk = :p AND sk >= :s", ExclusiveStartKey=page["LastEvaluatedKey"],
                          ExpressionAttributeValues={":p": {"S": "BTC-USD"}, ":s": {"N": "110"}}))
    outcomes += [
        _call(recorder, "dynamodb", "query", TableName=TABLE, KeyConditionExpression="nope = :p",
              ExpressionAttributeValues={":p": {"S": "BTC-USD"}}),  # ValidationException
        _call(recorder, "dynamodb", "delete_item", TableName=TABLE, Key=item_key, ReturnValues="ALL_OLD"),
        _call(recorder, "dynamodb", "delete_item", TableName=TABLE, Key=item_key,
              ConditionExpression="attribute_exists(pk)"),  # ConditionalCheckFailedException
        _call(recorder, "dynamodb", "scan", TableName=TABLE, Limit=3),
        _call(recorder, "dynamodb", "get_item", TableName=TABLE, Key={"pk": {"S": "BTC-USD"}, "sk": {"N": "130"}},
              ReturnConsumedCapacity="TOTAL"),
        _call(recorder, "dynamodb", "put_item", TableName=TABLE, ReturnValues="ALL_OLD",
              ReturnConsumedCapacity="INDEXES", Item={"pk": {"S": "BTC-USD"}, "sk": {"N": "130"},
                                                      "nums": {"NS": ["1", "2.5"]}, "list": {"L": [{"S": "x"}]}}),
        _call(recorder, "dynamodb", "batch_write_item", RequestItems={TABLE: [
            {"PutRequest": {"Item": {"pk": {"S": "ETH-USD"}, "sk": {"N": "1"}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "BTC-USD"}, "sk": {"N": "145"}}}}]}),
        _call(recorder, "dynamodb", "batch_get_item", RequestItems={TABLE: {"Keys": [
            {"pk": {"S": "ETH-USD"}, "sk": {"N": "1"}}, {"pk": {"S": "BTC-USD"}, "sk": {"N": "130"}}]}}),
        _call(recorder, "dynamodb", "transact_write_items", TransactItems=[  # TransactionCanceledException
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "ETH-USD"}, "sk": {"N": "2"}}}},
            {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "ETH-USD"}, "sk": {"N": "1"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}}]),
        _call(recorder, "dynamodb", "describe_table", TableName=TABLE),
        _call(recorder, "s3", "create_bucket", Bucket=BUCKET),
        _call(recorder, "s3", "put_object", Bucket=BUCKET, Key="raw/2023/03/10/candles.json", Body=b'{"c": [1, 2]}',
              ContentType="application/json", Metadata={"source": "coinbase", "my_key": "underscored"}),
        _call(recorder, "s3", "put_object", Bucket=BUCKET, Key="odd keys/a%2Fb c+d.json", Body=b"x" * 2048),
        _call(recorder, "s3", "get_object", Bucket=BUCKET, Key="raw/2023/03/10/candles.json"),
        _call(recorder, "s3", "head_object", Bucket=BUCKET, Key="raw/2023/03/10/candles.json"),
        _call(recorder, "s3", "get_object", Bucket=BUCKET, Key="odd keys/a%2Fb c+d.json", Range="bytes=0-9"),
        _call(recorder, "s3", "get_object", Bucket=BUCKET, Key="missing.json"),  # NoSuchKey
        _call(recorder, "s3", "head_object", Bucket=BUCKET, Key="missing.json"),  # 404
        _call(recorder, "s3", "list_objects_v2", Bucket=BUCKET),
        _call(recorder, "ssm", "get_parameter", Name="/missing/parameter"),  # ParameterNotFound
    ]
    return outcomes


def _masked(status: int, headers: dict[str, str], body: bytes) -> tuple:
    text = body.decode("utf-8", errors="replace")
    text = VOLATILE_JSON.sub(r'"\1": 0', text)
    text = VOLATILE_XML.sub(r"<\1>...</\1>", text)
    kept = {name: value for name, value in headers.items() if name.lower() not in SERVER_HEADERS}
    if body and text != body.decode("utf-8", errors="replace"):  # a masked value may differ in length
        kept = {name: value for name, value in kept.items() if name.lower() != "content-length"}
    return status, kept, text


def test_fast_serving_answers_as_moto_serves(servers):
    moto_side, fast_side = Recorder(servers["moto"]), Recorder(servers["fast"])
    outcomes = {"moto": run_corpus(moto_side), "fast": run_corpus(fast_side)}
    assert len(moto_side.answers) == len(fast_side.answers) > 30
    for (operation, *moto_answer), (fast_operation, *fast_answer) in zip(moto_side.answers, fast_side.answers,
                                                                          strict=True):
        assert operation == fast_operation
        assert _masked(*fast_answer) == _masked(*moto_answer), operation
    assert [_scrub(o) for o in outcomes["fast"]] == [_scrub(o) for o in outcomes["moto"]]
    # The corpus does fail the ways it means to (both sides agree, by the asserts above).
    errors = [o for o in outcomes["fast"] if isinstance(o, str)]
    assert {"ResourceInUseException", "ConditionalCheckFailedException", "ValidationException",
            "TransactionCanceledException",
            "ResourceNotFoundException", "NoSuchKey", "404", "ParameterNotFound"} <= set(errors)
    # An S3 metadata key with an underscore keeps its spelling, as moto's own handler keeps it.
    head = next(o for o in outcomes["fast"] if isinstance(o, dict) and o.get("Metadata"))
    assert head["Metadata"] == {"source": "coinbase", "my_key": "underscored"}


def _scrub(outcome):
    """A parsed answer without its per-run values (request ids, dates, server headers)."""
    if not isinstance(outcome, dict):
        return outcome
    outcome = {key: value for key, value in outcome.items() if key != "ResponseMetadata"}
    text = json.dumps(outcome, default=str, sort_keys=True)
    text = re.sub(r'"(CreationDateTime|LastModified)": "[^"]*"', r'"\1": ""', text)
    return json.loads(text)


def test_connections_are_kept_alive(servers):
    """The point of the change: one connection serves many requests (moto's server closes each)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", servers["fast"], timeout=10)
    for _ in range(3):
        connection.request("GET", "/moto-api/data.json")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Connection", "").lower() != "close"
    connection.close()
    plain = http.client.HTTPConnection("127.0.0.1", servers["moto"], timeout=10)
    plain.request("GET", "/moto-api/data.json")
    assert plain.getresponse().getheader("Connection") == "close"
    plain.close()


SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20230310/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"


@pytest.mark.parametrize("environ", [
    {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"},
    {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "DynamoDBStreams_20120810.GetRecords",
     "service": "dynamodb"},
    {"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/key", "service": "s3"},
    {"REQUEST_METHOD": "GET", "PATH_INFO": "/v20180820/configuration/publicAccessBlock", "service": "s3"},
    {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "AWSStepFunctions.StartExecution",
     "service": "states"},
    {"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/functions/f/invocations", "service": "lambda"},
    {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "AmazonSSM.GetParameter", "service": "ssm"},
    {"REQUEST_METHOD": "GET", "PATH_INFO": "/moto-api/data.json", "service": "s3"},
    {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "service": "ses"},
    {"REQUEST_METHOD": "POST", "PATH_INFO": "/v2/email/outbound-emails", "service": "ses"},
])
def test_remembered_routing_is_moto_routing(environ):
    """For each signed request shape, the remembered backend is the one moto resolves, every time."""
    environ = dict(environ)
    service = environ.pop("service", "dynamodb")
    environ |= {"HTTP_AUTHORIZATION": SIGNED.format(region="eu-west-1", service=service),
                "HTTP_HOST": "127.0.0.1:4599", "wsgi.input": None}
    remembered = serving.EmulatorApp(cache_routes=True)
    moto_routing = serving.EmulatorApp(cache_routes=False)
    first = remembered.get_application(dict(environ))
    assert first is remembered.get_application(dict(environ))  # from the cache the second time
    assert first.service == moto_routing.get_application(dict(environ)).service


def test_unsigned_requests_are_routed_by_moto_each_time():
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "127.0.0.1:4599"}
    assert serving._route_key(environ) is None
    signed_bedrock = environ | {"HTTP_AUTHORIZATION": SIGNED.format(region="us-east-1", service="bedrock")}
    assert serving._route_key(signed_bedrock) is None  # routed by the operation its URI names


def test_forwarded_invocations_leave_threads_for_the_handlers_calls():
    """Past its slots a forwarded invocation is throttled as Lambda throttles (429), never queued."""
    slots = serving.InvokeSlots(2)
    with slots, slots:
        with pytest.raises(Exception) as refused:
            slots.__enter__()
        assert refused.value.code == 429
        assert json.loads(refused.value.description)["__type"] == "TooManyRequestsException"
    with slots:  # released: available again
        pass


def _parsed(head: bytes):
    from waitress.adjustments import Adjustments

    parser = serving._RequestParser(Adjustments())
    parser.received(head + b"\r\n")
    return parser.headers


def test_s3_metadata_names_with_underscores_reach_moto_and_nothing_else_does():
    headers = _parsed(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nx-amz-meta-my_key: a\r\nx-amz-meta-my_key: b\r\n"
                      b"x-other_header: dropped\r\nX-Amz-Meta-Plain: kept\r\n")
    assert headers["X_AMZ_META_MY_KEY"] == "a,b"  # joined as moto's own request handler joins them
    assert json.loads(headers[serving._PRESERVED_NAMES_HEADER]) == {"HTTP_X_AMZ_META_MY_KEY": "x-amz-meta-my_key"}
    assert "X_OTHER_HEADER" not in headers  # only S3 metadata is preserved, as in moto
    assert headers["X_AMZ_META_PLAIN"] == "kept"
    # A dashed header of the same WSGI name wins; a client cannot send the parser's own header.
    spoofed = _parsed(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nX-Amz-Meta-My-Key: dashed\r\nx-amz-meta-my_key: u\r\n"
                      b"Btc-Trader-Preserved-Header-Names: {\"HTTP_HOST\": \"evil\"}\r\n")
    assert spoofed["X_AMZ_META_MY_KEY"] == "dashed"
    assert serving._PRESERVED_NAMES_HEADER not in spoofed


def test_an_invocation_past_the_slots_is_throttled_before_it_waits(monkeypatch):
    from types import SimpleNamespace

    from btc_trader.local import server

    monkeypatch.setenv("MOTO_PORT", "4599")
    monkeypatch.setattr(server, "registered_lambda_server",
                        lambda port: SimpleNamespace(endpoint="http://127.0.0.1:9"))  # nothing listens
    monkeypatch.setattr(serving, "invoke_slots", serving.InvokeSlots(1))
    headers: dict = {}
    # The one slot is held by an invocation in flight.
    with serving.invoke_slots, pytest.raises(Exception) as refused:
        server.forward_invoke(None, "btc-trader-dev-risk-manager", None, "{}", {}, headers)
    assert refused.value.code == 429
    # With the slot free, the same call goes to the Lambda server (which is not there).
    body = json.loads(server.forward_invoke(None, "btc-trader-dev-risk-manager", None, "{}", {}, headers))
    assert body["errorType"] == "LocalLambdaServerUnreachable"


def test_s3_object_paths_share_one_route():
    app = serving.EmulatorApp()
    signed = {"REQUEST_METHOD": "PUT", "HTTP_HOST": "127.0.0.1:4599", "wsgi.input": None,
              "HTTP_AUTHORIZATION": SIGNED.format(region="us-east-1", service="s3")}
    first = app.get_application(signed | {"PATH_INFO": "/bucket/raw/2023/03/10/a.json"})
    assert app.get_application(signed | {"PATH_INFO": "/bucket/raw/2023/03/10/b.json"}) is first
    assert len(app._routes) == 1
    control = app.get_application(signed | {"PATH_INFO": "/v20180820/configuration/publicAccessBlock"})
    assert control.service == "s3control" and first.service == "s3"
