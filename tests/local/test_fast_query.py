"""The emulator's fast DynamoDB Query answers exactly as moto's own (items, counts, pages)."""

from __future__ import annotations

import random

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from btc_trader.local import fast_query


@pytest.fixture(scope="module")
def tables():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name, kind in (("numbers", "N"), ("strings", "S")):
            client.create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": kind}],
            )
        rng = random.Random(3)
        for i in rng.sample(range(-500, 5000), 200):  # unsorted inserts, negative and decimal keys
            key = str(i / 4) if i % 7 == 0 else str(i)
            client.put_item(TableName="numbers", Item={"pk": {"S": "a" if i % 3 else "b"}, "sk": {"N": key},
                                                       "price": {"N": str(i * 1.5)}, "pad": {"S": "x" * (i % 50)}})
            client.put_item(TableName="strings", Item={"pk": {"S": "a"}, "sk": {"S": f"k{i:05d}"},
                                                       "flag": {"BOOL": i % 2 == 0}, "blob": {"B": bytes([i % 256, 7])},
                                                       "nested": {"M": {"l": {"L": [{"N": "1.25"}, {"NULL": True}]},
                                                                        "ss": {"SS": ["x", "y"]}}}})
        yield client


def _both(client, request, fallback=False):
    """The same request answered by moto's query and by the fast one (which must not fall back)."""
    original, original_serialized = Table.query, DynamoHandler.serialized
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    try:
        plain = _pages(client, request)
        Table.query = counting
        fast_query.install()
        assert Table.query is not counting
        fast = _pages(client, request)
    finally:
        Table.query, DynamoHandler.serialized = original, original_serialized
    assert bool(calls) == fallback, request
    return plain, fast


def _pages(client, request):
    pages, request = [], dict(request)
    for _ in range(50):
        page = client.query(**request)
        page.pop("ResponseMetadata")
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return pages


CONDITIONS = [
    ("pk = :h", {}),
    ("pk = :h AND sk = :a", {":a": "100"}),
    ("pk = :h AND sk < :a", {":a": "100"}),
    ("pk = :h AND sk <= :a", {":a": "100"}),
    ("pk = :h AND sk > :a", {":a": "4000"}),
    ("pk = :h AND sk >= :a", {":a": "4000"}),
    ("pk = :h AND sk BETWEEN :a AND :b", {":a": "-20", ":b": "1234.5"}),
    ("pk = :h AND sk BETWEEN :a AND :b", {":a": "6000", ":b": "7000"}),
]


@pytest.mark.parametrize("condition,values", CONDITIONS)
def test_numeric_sort_keys_answer_like_moto(tables, condition, values):
    for forward in (True, False):
        for limit in (None, 1, 7, 500):
            request = {"TableName": "numbers", "KeyConditionExpression": condition, "ScanIndexForward": forward,
                       "ExpressionAttributeValues": {":h": {"S": "a"}} | {k: {"N": v} for k, v in values.items()}}
            if limit:
                request["Limit"] = limit
            plain, fast = _both(tables, request)
            assert fast == plain, request


def test_projection_filter_and_strings_answer_like_moto(tables):
    for fallback, request in (
        (False, {"TableName": "numbers", "KeyConditionExpression": "pk = :h AND sk BETWEEN :a AND :b",
         "ProjectionExpression": "sk, price", "ScanIndexForward": False, "Limit": 9,
         "FilterExpression": "price > :p",
         "ExpressionAttributeValues": {":h": {"S": "b"}, ":a": {"N": "0"}, ":b": {"N": "3000"}, ":p": {"N": "900"}}}),
        (False, {"TableName": "strings", "KeyConditionExpression": "pk = :h AND sk > :a", "Limit": 11,
                 "ReturnConsumedCapacity": "TOTAL",
                 "ExpressionAttributeValues": {":h": {"S": "a"}, ":a": {"S": "k01000"}}}),
        (True, {"TableName": "strings", "KeyConditionExpression": "pk = :h AND begins_with(sk, :a)",
                "ExpressionAttributeValues": {":h": {"S": "a"}, ":a": {"S": "k02"}}}),
        (True, {"TableName": "numbers", "KeyConditionExpression": "pk = :h", "Select": "COUNT",
                "ExpressionAttributeValues": {":h": {"S": "nobody"}}}),
    ):
        plain, fast = _both(tables, request, fallback)
        assert fast == plain, request


def test_install_is_idempotent(tables):
    original, original_serialized = Table.query, DynamoHandler.serialized
    try:
        fast_query.install()
        installed = Table.query
        fast_query.install()
        assert Table.query is installed and installed.moto_query is original
        assert DynamoHandler.serialized.moto_serialized is original_serialized
    finally:
        Table.query, DynamoHandler.serialized = original, original_serialized


def test_sorted_partitions_answer_like_moto_as_items_come_and_go(monkeypatch):
    """Tables created after install() keep their keys in order through puts, overwrites and deletes."""
    monkeypatch.setattr(Table, "__init__", Table.__init__)  # undone after the test, as Table.query is
    monkeypatch.setattr(Table, "query", Table.query)
    monkeypatch.setattr(DynamoHandler, "serialized", DynamoHandler.serialized)
    rng = random.Random(11)
    with mock_aws():
        fast_query.install()
        fast, moto = Table.query, Table.query.moto_query
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="prices", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "N"}],
        )

        def key(number):
            return {"pk": {"S": "BTC-USD"}, "sk": {"N": number}}

        def both(request):
            pages = {}
            for name, query in (("fast", fast), ("moto", moto)):
                Table.query = query
                pages[name] = _pages(client, request)
            Table.query = fast
            return pages["fast"], pages["moto"]

        present: list[str] = []
        for step in range(120):
            action = rng.random()
            if action < 0.55 or not present:  # a new key: negative, decimal, or the same value spelled twice
                number = rng.choice([str(rng.randint(-300, 3000)), f"{rng.randint(0, 99)}.25", "7", "7.0"])
                client.put_item(TableName="prices", Item=key(number) | {"v": {"N": str(step)}})
                present.append(number)
            elif action < 0.7:  # the item of an existing key replaced
                client.put_item(TableName="prices", Item=key(rng.choice(present)) | {"v": {"S": "again"}})
            elif action < 0.8:
                client.update_item(TableName="prices", Key=key(rng.choice(present)), UpdateExpression="SET w = :w",
                                   ExpressionAttributeValues={":w": {"N": "1"}})
            elif action < 0.9:
                gone = present.pop(rng.randrange(len(present)))
                client.delete_item(TableName="prices", Key=key(gone))
            else:
                client.batch_write_item(RequestItems={"prices": [
                    {"PutRequest": {"Item": key(str(rng.randint(3000, 3100)))}},
                    {"DeleteRequest": {"Key": key(rng.choice(present))}}]})
            if step % 4 == 0:
                low = str(rng.randint(-100, 2000))
                for request in (
                    {"KeyConditionExpression": "pk = :h AND sk >= :a", "Limit": rng.randint(1, 9),
                     "ExpressionAttributeValues": {":h": {"S": "BTC-USD"}, ":a": {"N": low}}},
                    {"KeyConditionExpression": "pk = :h", "Limit": 7, "ScanIndexForward": False,
                     "ExpressionAttributeValues": {":h": {"S": "BTC-USD"}}},
                ):
                    fast_pages, moto_pages = both({"TableName": "prices"} | request)
                    assert fast_pages == moto_pages, request
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = dynamodb_backends["123456789012"]["us-east-1"].tables["prices"]
        partition = table.items.get(DynamoType({"S": "BTC-USD"}))
        assert isinstance(partition, fast_query.SortedPartition)
        client.query(TableName="prices", KeyConditionExpression="pk = :h", Limit=1,
                     ExpressionAttributeValues={":h": {"S": "BTC-USD"}})
        client.put_item(TableName="prices", Item=key("123456"))
        assert partition._index is not None and len(partition._index[1]) == len(partition)  # kept, not rebuilt


def test_sorted_partition_order_survives_copies_and_drops_on_removal():
    from moto.dynamodb.models.dynamo_type import DynamoType

    partition = fast_query.SortedPartition()
    for number in ("5", "-1", "2.5"):
        partition[DynamoType({"N": number})] = number
    natives, _ = partition.sorted_keys()
    assert [str(n) for n in natives] == ["-1", "2.5", "5"]
    partition[DynamoType({"N": "3"})] = "3"  # kept in order as it arrives
    assert [str(n) for n in partition.sorted_keys()[0]] == ["-1", "2.5", "3", "5"]
    import copy

    duplicate = copy.deepcopy(partition)
    assert isinstance(duplicate, fast_query.SortedPartition) and dict(duplicate) == dict(partition)
    assert [str(n) for n in duplicate.sorted_keys()[0]] == ["-1", "2.5", "3", "5"]
    del partition[DynamoType({"N": "2.5"})]
    assert [str(n) for n in partition.sorted_keys()[0]] == ["-1", "3", "5"]
    partition[DynamoType({"B": "AAE="})] = "binary"  # not orderable here: moto's own query answers
    assert partition.sorted_keys() is None


def test_projections_answer_like_moto(tables):
    """Top-level projections take the short round trip; paths, list elements and maps are moto's."""
    for i, number in enumerate(["1e3", "0.10", "-0", "12345678901234567890.123456789", "7", "1E-7", "100"]):
        tables.put_item(TableName="numbers", Item={
            "pk": {"S": "c"}, "sk": {"N": str(i)}, "price": {"N": number}, "label_text": {"S": f"x{i}"},
            "flag_set": {"SS": ["b", "a", f"c{i}"]}, "size_set": {"NS": ["2", "1.50", number]}, "is_ok": {"BOOL": i % 2 == 0},
            "null_value": {"NULL": True}, "bin_value": {"B": bytes([i, 1, 2])}, "item_list": {"L": [{"N": number}, {"S": "s"}]},
            "doc_map": {"M": {"n": {"NULL": True}, "v": {"N": number}}},
        })
    from moto.dynamodb.models.dynamo_type import Item

    moto_project = Item.project
    for projection, names, by_moto in (
        ("price", {}, False),
        ("#t, price, label_text", {"#t": "sk"}, False),
        ("flag_set, size_set, is_ok, null_value, bin_value, #l, not_there", {"#l": "item_list"}, False),
        ("price, doc_map", {}, True),  # a map: moto's own projection
        ("doc_map.v, price", {}, True),  # a path
        ("item_list[1], label_text", {}, True),  # a list element
    ):
        request = {"TableName": "numbers", "KeyConditionExpression": "pk = :h", "ProjectionExpression": projection,
                   "ExpressionAttributeValues": {":h": {"S": "c"}}}
        if names:
            request["ExpressionAttributeNames"] = names
        projected = []

        def counting(self, expressions, projected=projected):
            projected.append(expressions)
            return moto_project(self, expressions)

        Item.project = counting
        try:
            plain, fast = _both(tables, request)
        finally:
            Item.project = moto_project
        assert fast == plain, projection
        assert len(projected) == (14 if by_moto else 7), projection  # moto's query projects the 7 items too
