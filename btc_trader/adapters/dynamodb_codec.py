"""One mapping between Python values and DynamoDB's wire format, for every table adapter.

Floats go in as Decimals through their shortest repr (so 0.1 stays 0.1); None values are left
out; numbers come back as int when whole and written without a point, else float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return to_decimal(value)
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """A Python mapping as a DynamoDB item (attribute values)."""
    return {k: _serializer.serialize(to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values."""
    return {k: from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}
