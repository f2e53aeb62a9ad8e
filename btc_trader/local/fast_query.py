"""A DynamoDB Query for the emulator that costs what DynamoDB's does: O(log n + items returned).

moto answers a Query by walking every item of the partition, sorted by comparing `DynamoType`s
one pair at a time, and measuring each item's size on the way, however few it returns: a
`Limit=1` query of a 1,600-item price partition took ~70 ms, and the price table grows every
tick of `local run`, so the emulator's DynamoDB became the bound of the whole local job.

`install()` replaces `Table.query` in the emulator process with a version for the common shape
(the table's own keys, one partition, an optional key condition on the sort key) that sorts the
partition by native values, bisects the key condition, and measures only what it returns.
Everything else (indexes, legacy KeyConditions filters, binary keys, `begins_with`) goes to
moto's own implementation. Results, `ScannedCount` and `LastEvaluatedKey` are moto's: a parity
test runs both on the same tables (an internal moto API, pinned with moto's version).

Sorting the partition on every query still cost O(n log n) a query, and the price partition grows
every tick of `local run`; the partitions of tables created after `install()` keep their range keys
sorted as items come and go (`SortedPartition`), so a query only bisects.
"""

from __future__ import annotations

import base64
import bisect
import copy
import json
import re
from decimal import Decimal
from typing import Any

# Key-condition operators, in both spellings moto passes them, as one canonical name.
_BISECTABLE = {"EQ": "EQ", "=": "EQ", "LT": "LT", "<": "LT", "LE": "LE", "<=": "LE", "GT": "GT", ">": "GT",
               "GE": "GE", ">=": "GE", "BETWEEN": "BETWEEN"}


def _native(value: Any) -> Decimal | str | None:
    """A key attribute's value as Python orders it (N and S only; None: not handled here)."""
    kind = getattr(value, "type", None)
    if kind == "N":
        return Decimal(value.value)
    if kind == "S":
        return value.value
    return None


def _native_raw(raw: dict[str, Any]) -> Decimal | str | None:
    if "N" in raw:
        return Decimal(raw["N"])
    if "S" in raw:
        return raw["S"]
    return None


def _bounds(keys: list[Any], comparison: str | None, values: list[Any]) -> tuple[int, int] | None:
    """The slice of sorted `keys` the key condition selects (None: not expressible here)."""
    if comparison is None:
        return 0, len(keys)
    if comparison not in _BISECTABLE:
        return None
    comparison = _BISECTABLE[comparison]
    natives = [_native(v) for v in values]
    if any(n is None for n in natives) or any(type(n) is not type(keys[0]) for n in natives):
        return None
    low = natives[0]
    if comparison == "EQ":
        return bisect.bisect_left(keys, low), bisect.bisect_right(keys, low)
    if comparison == "LT":
        return 0, bisect.bisect_left(keys, low)
    if comparison == "LE":
        return 0, bisect.bisect_right(keys, low)
    if comparison == "GT":
        return bisect.bisect_right(keys, low), len(keys)
    if comparison == "GE":
        return bisect.bisect_left(keys, low), len(keys)
    high = natives[1]
    return bisect.bisect_left(keys, low), bisect.bisect_right(keys, high)


class SortedPartition(dict):  # type: ignore[type-arg]
    """A moto table partition (range key -> item) that keeps its range keys in sorted order.

    The order is built at the first query and kept as keys are added (a bisect); any other change
    (a key removed, the dict cleared or updated in bulk) drops it, to be rebuilt at the next query.
    Replacing the item of an existing key keeps it: the order is the keys'. Equal keys keep their
    insertion order, as the stable sort of the unsorted path does.
    """

    _index: tuple[list[Any], list[Any]] | None = None  # (native keys, moto keys), in key order
    _unindexable = False  # a key that is not N or S, or keys of two types: moto's path answers

    def sorted_keys(self) -> tuple[list[Any], list[Any]] | None:
        """(native keys, moto keys) in key order; None when the keys cannot be ordered here."""
        if self._index is None and not self._unindexable:
            pairs = [(_native(key), key) for key in self]
            if any(native is None for native, _ in pairs) or len({type(native) for native, _ in pairs}) > 1:
                self._unindexable = True
                return None
            pairs.sort(key=lambda pair: pair[0])
            self._index = ([native for native, _ in pairs], [key for _, key in pairs])
        return self._index

    def _drop_index(self) -> None:
        self._index = None
        self._unindexable = False

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._index is not None and key not in self:
            natives, keys = self._index
            native = _native(key)
            if native is None or (natives and type(native) is not type(natives[0])):
                self._drop_index()
            else:
                position = bisect.bisect_right(natives, native)
                natives.insert(position, native)
                keys.insert(position, key)
        elif self._unindexable:
            self._drop_index()
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._drop_index()

    def pop(self, *args: Any) -> Any:
        self._drop_index()
        return super().pop(*args)

    def popitem(self) -> Any:
        self._drop_index()
        return super().popitem()

    def clear(self) -> None:
        self._drop_index()
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._drop_index()
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> SortedPartition:
        self.update(other)
        return self

    def __copy__(self) -> SortedPartition:
        return SortedPartition(dict.items(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> SortedPartition:
        duplicate = SortedPartition()
        memo[id(self)] = duplicate
        for key, value in dict.items(self):
            dict.__setitem__(duplicate, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return duplicate

    def __reduce__(self) -> Any:
        return SortedPartition, (dict(self),)


def _sorted_partitions(table_init: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        table_init(self, *args, **kwargs)
        if self.range_key_attr and getattr(self.items, "default_factory", None) is dict:
            self.items.default_factory = SortedPartition

    __init__.btc_trader_sorted = True  # type: ignore[attr-defined]
    return __init__


def install() -> None:
    """Replace moto's Table.query with the fast path (falls back to moto's for other shapes)."""
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

    original = Table.query
    if getattr(original, "btc_trader_fast", False):
        return
    if not getattr(Table.__init__, "btc_trader_sorted", False):
        Table.__init__ = _sorted_partitions(Table.__init__)

    def query(self: Any, hash_key: Any, range_comparison: str | None, range_objs: list[Any], limit: int,
              exclusive_start_key: dict[str, Any] | None, scan_index_forward: bool,
              projection_expressions: Any, index_name: str | None = None, consistent_read: bool = False,
              filter_expression: Any = None, hash_key_conditions: Any = None, range_key_conditions: Any = None,
              **filter_kwargs: Any) -> tuple[list[Any], int, dict[str, Any] | None]:
        def moto_query() -> tuple[list[Any], int, dict[str, Any] | None]:
            return original(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                            scan_index_forward, projection_expressions, index_name, consistent_read,
                            filter_expression, hash_key_conditions, range_key_conditions, **filter_kwargs)

        if (index_name or filter_kwargs or not self.range_key_attr or hash_key is None or limit == 0
                or (range_key_conditions and (len(range_key_conditions) > 1
                                              or range_key_conditions[-1][0] != self.range_key_attr))):
            return moto_query()
        partition = self.items.get(hash_key)  # .get: the dict is a defaultdict
        if not partition:
            return moto_query()
        if isinstance(partition, SortedPartition):
            index = partition.sorted_keys()
            if index is None:
                return moto_query()
            keys, range_keys = index
        else:  # a partition from before install(): sorted for this query
            pairs = [(_native(item.range_key), item) for item in partition.values()]
            if any(key is None for key, _ in pairs) or len({type(key) for key, _ in pairs}) > 1:
                return moto_query()
            pairs.sort(key=lambda pair: pair[0])
            keys = [key for key, _ in pairs]
            range_keys = [item.range_key for _, item in pairs]
        selected = _bounds(keys, range_comparison, range_objs)
        if selected is None:
            return moto_query()
        low, high = selected
        # Walk order, as moto's: ascending, or descending when ScanIndexForward is false.
        order = range(low, high) if scan_index_forward is not False else range(high - 1, low - 1, -1)
        if exclusive_start_key is not None:
            start = _native_raw(exclusive_start_key.get(self.range_key_attr) or {})
            if start is None or type(start) is not type(keys[0]):
                return moto_query()
            if scan_index_forward is not False:
                order = range(max(low, bisect.bisect_right(keys, start)), high)
            else:
                order = range(min(high, bisect.bisect_left(keys, start)) - 1, low - 1, -1)
        results: list[Any] = []
        result_size = 0
        last_evaluated_key = None
        for position in order:
            item = partition[range_keys[position]]
            size = item.size()
            if len(results) == limit or result_size + size > RESULT_SIZE_LIMIT:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], None)
                break
            results.append(item)
            result_size += size
        else:
            # moto sets LastEvaluatedKey when the limit is reached and any item of the partition
            # follows in walk order, matching the key condition or not.
            if results and len(results) == limit:
                after = position + 1 if scan_index_forward is not False else position - 1  # noqa: F821
                if 0 <= after < len(keys):
                    last_evaluated_key = self._get_last_evaluated_key(results[-1], None)
        scanned_count = len(results)
        # No defensive deep copy (moto's costs more than the query): the caller turns the items
        # into the response at once and never mutates them; a projection builds new items.
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expressions:
            results = [_project(item, projection_expressions) for item in results]
        return results, scanned_count, last_evaluated_key

    query.btc_trader_fast = True  # type: ignore[attr-defined]
    query.moto_query = original  # type: ignore[attr-defined]
    Table.query = query
    _install_query_serializer()


_LIST_ELEMENT = re.compile(r"(.+)\[(\d+)\]$")  # moto's test for `name[index]` (find_nested_key)


def _project(item: Any, projection_expressions: list[list[str]]) -> Any:
    """`Item.project`, for top-level names, without moto's round trip of the whole item.

    moto turns every attribute of the item into Python values, picks the projected ones and
    serializes them back. For top-level names (no path, no list index) and no map among the
    projected attributes (moto's merge of a map also drops nulls elsewhere in the result), this
    makes the same round trip for the projected attributes only: the same values, in the same
    order, in a new moto Item. Anything else is moto's own `project`.
    """
    from moto.dynamodb.models.dynamo_type import Item, deserializer, serializer

    projected: dict[str, Any] = {}
    for expression in projection_expressions:
        if len(expression) != 1 or _LIST_ELEMENT.match(expression[0]):
            return item.project(projection_expressions)
        name = expression[0]
        attribute = item.attrs.get(name)
        if attribute is None or name in projected:
            continue
        if attribute.type == "M":
            return item.project(projection_expressions)
        projected[name] = deserializer.deserialize(attribute.to_regular_json())
    return Item(hash_key=item.hash_key, range_key=item.range_key, attrs=serializer.serialize(projected)["M"])


def _wire(value: Any) -> str:
    if isinstance(value, bytes):  # a B attribute: base64 on the wire, as the serializer writes it
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _install_query_serializer() -> None:
    """Write Query responses with json.dumps: they are already DynamoDB's wire JSON.

    moto's generic serializer walks the botocore shape of every attribute of every item; for a
    query returning a few hundred items that was the emulator's largest cost.
    """
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.serialized
    if getattr(original, "btc_trader_fast", False):
        return

    def serialized(self: Any, action_result: Any) -> Any:
        result = action_result.result
        if self._get_action() != "Query" or not isinstance(result, dict):
            return original(self, action_result)
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        headers.update(self.response_headers)
        return 200, headers, json.dumps(result, default=_wire)

    serialized.btc_trader_fast = True  # type: ignore[attr-defined]
    serialized.moto_serialized = original  # type: ignore[attr-defined]
    DynamoHandler.serialized = serialized
