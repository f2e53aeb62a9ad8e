"""Predictions and their scores in DynamoDB (see storage_schema.PREDICTIONS / PREDICTION_SCORES)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from btc_trader.adapters.aws_clients import LazyClient
from btc_trader.adapters.dynamodb_codec import deserialize as _deserialize
from btc_trader.adapters.dynamodb_codec import serialize as _serialize
from btc_trader.domain.prediction.ensemble import Skill
from btc_trader.domain.prediction.scoring import PERSISTENCE, Score, rolling_skill
from btc_trader.storage_schema import TTL_ATTRIBUTE


class DynamoDBPredictionStore(LazyClient):
    """Stores each prediction once, finds those due for scoring, keeps every model's scores."""

    service = "dynamodb"

    def __init__(self, predictions_table: str, scores_table: str, client: Any | None = None):
        self.predictions_table = predictions_table
        self.scores_table = scores_table
        self._client = client


    def save_prediction(self, symbol: str, timestamp: int, record: dict[str, Any], *, expires_at: int) -> bool:
        """Store a prediction; False when one already exists for that time (a retried run)."""
        item = {"symbol": symbol, "timestamp": timestamp, **record, TTL_ATTRIBUTE: expires_at}
        try:
            self.client.put_item(
                TableName=self.predictions_table,
                Item=_serialize(item),
                ConditionExpression="attribute_not_exists(#ts)",
                ExpressionAttributeNames={"#ts": "timestamp"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_prediction(self, symbol: str, timestamp: int) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.predictions_table,
            Key=_serialize({"symbol": symbol, "timestamp": timestamp}),
            ConsistentRead=True,
        )
        return _deserialize(response["Item"]) if "Item" in response else None

    def due_for_scoring(self, symbol: str, now: int, lookback_s: int) -> list[dict[str, Any]]:
        """Unscored predictions whose horizon has passed, oldest first (bounded window)."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.predictions_table,
            KeyConditionExpression="#symbol = :symbol AND #ts BETWEEN :start AND :now",
            FilterExpression="attribute_not_exists(scored_at) AND due_at <= :now",
            ExpressionAttributeNames={"#symbol": "symbol", "#ts": "timestamp"},
            ExpressionAttributeValues=_serialize({":symbol": symbol, ":start": now - lookback_s, ":now": now}),
        )
        return [_deserialize(item) for page in pages for item in page.get("Items", [])]

    def save_scores(
        self, symbol: str, timestamp: int, scores: list[Score], realised_price: float, *, now: int, expires_at: int
    ) -> None:
        """Store every model's score and mark the prediction scored (a rerun overwrites)."""
        persistence = next(s for s in scores if s.model == PERSISTENCE)
        for s in scores:
            if s.model == PERSISTENCE:
                continue
            self.client.put_item(
                TableName=self.scores_table,
                Item=_serialize({
                    "series": f"{symbol}#{s.model}",
                    "timestamp": timestamp,
                    "abs_pct_error": s.abs_pct_error,
                    "direction_hit": s.direction_hit,
                    "persistence_abs_pct_error": persistence.abs_pct_error,
                    "persistence_direction_hit": persistence.direction_hit,
                    TTL_ATTRIBUTE: expires_at,
                }),
            )
        self.client.update_item(
            TableName=self.predictions_table,
            Key=_serialize({"symbol": symbol, "timestamp": timestamp}),
            UpdateExpression="SET scored_at = :now, realised_price = :realised, scores = :scores",
            ExpressionAttributeValues=_serialize({
                ":now": now,
                ":realised": realised_price,
                ":scores": {s.model: {"abs_pct_error": s.abs_pct_error, "direction_hit": s.direction_hit} for s in scores},
            }),
        )

    def skills(self, symbol: str, models: list[str], window: int) -> dict[str, Skill]:
        """Each model's rolling skill over its newest `window` scores (one bounded query each)."""
        result = {}
        for model in models:
            response = self.client.query(
                TableName=self.scores_table,
                KeyConditionExpression="series = :series",
                ExpressionAttributeValues={":series": {"S": f"{symbol}#{model}"}},
                ScanIndexForward=False,
                Limit=window,
            )
            pairs = []
            for raw in response.get("Items", []):
                item = _deserialize(raw)
                pairs.append((
                    Score(model, float(item["abs_pct_error"]), bool(item["direction_hit"])),
                    Score(PERSISTENCE, float(item["persistence_abs_pct_error"]), bool(item["persistence_direction_hit"])),
                ))
            skill = rolling_skill(model, pairs, window)
            if skill is not None:
                result[model] = skill
        return result
