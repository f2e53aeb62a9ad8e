"""Predictions and their scores in DynamoDB (see storage_schema.PREDICTIONS / PREDICTION_SCORES).

predictions        one item per (symbol, prediction time): the whole `prediction` result (every
                   model's output and weight, and the ensemble), `due_at`, and once scored
                   `scored_at`, `realised_price` and every model's score.
prediction-scores  one item per (symbol#model, prediction time) with the model's and the
                   persistence baseline's score on that sample, so a model's newest scores are
                   one bounded query; plus one skill snapshot per evaluation under
                   `symbol#skill`, so the predictor reads every model's skill in one request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from btc_trader.adapters.aws_clients import LazyClient
from btc_trader.adapters.dynamodb_codec import deserialize as _deserialize
from btc_trader.adapters.dynamodb_codec import serialize as _serialize
from btc_trader.contracts import PredictionResult
from btc_trader.domain.prediction.edge import EdgeParams
from btc_trader.domain.prediction.ensemble import Skill
from btc_trader.domain.prediction.scoring import PERSISTENCE, Score, rolling_skill
from btc_trader.storage_schema import PREDICTION_SCORES, PREDICTIONS, TTL_ATTRIBUTE

SKILL_SERIES = "skill"
_P_HASH, _P_RANGE = PREDICTIONS.hash_key.name, PREDICTIONS.range_key.name
_S_HASH, _S_RANGE = PREDICTION_SCORES.hash_key.name, PREDICTION_SCORES.range_key.name
NAN = float("nan")
_REQUIRED = object()


def _number(raw: Mapping[str, Any], name: str, default: Any = _REQUIRED) -> float:
    """A stored number as float (float of its decimal string is exactly float of its Decimal)."""
    value = raw.get(name)
    if value is None:
        if default is _REQUIRED:
            raise KeyError(name)
        return default
    return float(value["N"]) if "N" in value else float(_deserialize({name: value})[name])


# How long a warm container trusts the score series it holds before reading it whole again.
EVIDENCE_MAX_AGE_S = 3600


@dataclass
class _Evidence:
    """One model's scores by prediction time, as read from the table and written by this store."""

    pairs: dict[int, tuple[Score, Score]]
    newest_read: int | None  # the newest score time a read returned: the next read starts after it
    read_at: float  # when the series was last read whole (the store's clock)


def _flag(raw: Mapping[str, Any], name: str) -> bool:
    value = raw[name]
    return value["BOOL"] if "BOOL" in value else bool(_deserialize({name: value})[name])


def score_series(symbol: str, model: str) -> str:
    """Partition key of one model's scores for one symbol."""
    return f"{symbol}#{model}"


def prediction_record(result: PredictionResult, at: int, execution_id: str | None) -> dict[str, Any]:
    """What is stored for a prediction: the full result, when it falls due, who asked."""
    record: dict[str, Any] = {
        "result": result.model_dump(mode="json"),
        "status": result.status,
        "due_at": at + result.horizon_minutes * 60,
        "execution_id": execution_id,
    }
    if result.status != "ok" or not any(m.ok for m in result.models):
        # Nothing to score: keeps it out of the evaluator's queue. Forecasts that merely had
        # no weight are still scored, so a model can earn its weight back.
        record["scored_at"] = at
    return record


class DynamoDBPredictionStore(LazyClient):
    """Stores each prediction once, finds those due for scoring, keeps scores and skills."""

    service = "dynamodb"

    def __init__(self, predictions_table: str, scores_table: str, client: Any | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.predictions_table = predictions_table
        self.scores_table = scores_table
        self._client = client
        self._clock = clock
        # Each model's stored scores as this container has read and written them (see skills).
        self._evidence: dict[tuple[str, str], _Evidence] = {}

    def save_prediction(self, symbol: str, timestamp: int, record: dict[str, Any], *, expires_at: int) -> bool:
        """Store a prediction; False when one already exists for that time (a retried run)."""
        item = {**record, _P_HASH: symbol, _P_RANGE: timestamp, TTL_ATTRIBUTE: expires_at}
        try:
            self.client.put_item(
                TableName=self.predictions_table,
                Item=_serialize(item),
                ConditionExpression="attribute_not_exists(#ts)",
                ExpressionAttributeNames={"#ts": _P_RANGE},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def save_result(
        self, symbol: str, at: int, result: PredictionResult, *, execution_id: str | None, expires_at: int
    ) -> bool:
        """Store a PredictionResult (every model's output and weight, and the ensemble) once."""
        return self.save_prediction(symbol, at, prediction_record(result, at, execution_id), expires_at=expires_at)

    def get_prediction(self, symbol: str, timestamp: int) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.predictions_table,
            Key=_serialize({_P_HASH: symbol, _P_RANGE: timestamp}),
            ConsistentRead=True,
        )
        return _deserialize(response["Item"]) if "Item" in response else None

    def predictions(self, symbol: str, start: int, end: int) -> Iterator[dict[str, Any]]:
        """Every stored prediction of `symbol` with start <= time < end, oldest first (paginated)."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.predictions_table,
            KeyConditionExpression="#symbol = :symbol AND #ts BETWEEN :start AND :last",
            ExpressionAttributeNames={"#symbol": _P_HASH, "#ts": _P_RANGE},
            ExpressionAttributeValues=_serialize({":symbol": symbol, ":start": start, ":last": end - 1}),
        )
        for page in pages:
            for item in page.get("Items", []):
                yield _deserialize(item)

    def due_for_scoring(self, symbol: str, now: int, lookback_s: int) -> list[dict[str, Any]]:
        """Unscored predictions whose horizon has passed, oldest first (bounded window)."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.predictions_table,
            KeyConditionExpression="#symbol = :symbol AND #ts BETWEEN :start AND :now",
            FilterExpression="attribute_not_exists(scored_at) AND due_at <= :now",
            ExpressionAttributeNames={"#symbol": _P_HASH, "#ts": _P_RANGE},
            ExpressionAttributeValues=_serialize({":symbol": symbol, ":start": now - lookback_s, ":now": now}),
        )
        return [_deserialize(item) for page in pages for item in page.get("Items", [])]

    def save_scores(
        self, symbol: str, timestamp: int, scores: list[Score], realised_price: float, *, now: int, expires_at: int
    ) -> None:
        """Store every model's score and mark the prediction scored (a rerun overwrites)."""
        persistence = next((s for s in scores if s.model == PERSISTENCE), None)
        if persistence is None:
            raise ValueError(f"scores of {symbol} at {timestamp} lack the {PERSISTENCE} baseline")
        # One PutItem per model (two or three): the evaluator's role grants PutItem, not
        # BatchWriteItem, and a rerun simply overwrites.
        for s in scores:
            if s.model == PERSISTENCE:
                continue
            item = _serialize({
                _S_HASH: score_series(symbol, s.model),
                _S_RANGE: timestamp,
                "abs_pct_error": s.abs_pct_error,
                "direction_hit": s.direction_hit,
                "persistence_abs_pct_error": persistence.abs_pct_error,
                "persistence_direction_hit": persistence.direction_hit,
                # The decision record: what the model called and what happened (see edge).
                "predicted_move_pct": s.predicted_move_pct,
                "realised_return": s.realised_return,
                TTL_ATTRIBUTE: expires_at,
            })
            self.client.put_item(TableName=self.scores_table, Item=item)
            evidence = self._evidence.get((symbol, s.model))
            if evidence is not None:  # once stored, known as a read would return it, without reading it
                evidence.pairs[timestamp] = self._pair(s.model, item)
        self.client.update_item(
            TableName=self.predictions_table,
            Key=_serialize({_P_HASH: symbol, _P_RANGE: timestamp}),
            UpdateExpression="SET scored_at = :now, realised_price = :realised, scores = :scores",
            ExpressionAttributeValues=_serialize({
                ":now": now,
                ":realised": realised_price,
                ":scores": {s.model: {"abs_pct_error": s.abs_pct_error, "direction_hit": s.direction_hit} for s in scores},
            }),
        )

    def skills(self, symbol: str, models: Iterable[str], params: EdgeParams) -> dict[str, Skill]:
        """Each model's rolling skill over its newest window of scores.

        The window can reach back through every score the table keeps (calls are rare under
        strict thresholds), so reading the whole series each evaluation made the evaluator slower
        with every score stored. A warm container reads it once, then only the scores newer than
        the newest it has read, and knows the ones it writes itself; the pairs rolling_skill gets
        are the same, in the same order (newest first), as a full read returns. Another
        container's late writes of older scores (a retried evaluation) are read when the series
        is read whole again, at most `EVIDENCE_MAX_AGE_S` later.
        """
        result = {}
        for model in models:
            pairs = self._read_evidence(symbol, model).pairs
            newest_first = (pairs[timestamp] for timestamp in sorted(pairs, reverse=True))
            skill = rolling_skill(model, newest_first, params)
            if skill is not None:
                result[model] = skill
        return result

    def _read_evidence(self, symbol: str, model: str) -> _Evidence:
        evidence = self._evidence.get((symbol, model))
        if evidence is None or self._clock() - evidence.read_at > EVIDENCE_MAX_AGE_S:
            evidence = _Evidence({}, None, self._clock())
        condition, values = "#series = :series", {":series": {"S": score_series(symbol, model)}}
        names = {"#series": _S_HASH}
        if evidence.newest_read is not None:
            condition += " AND #ts > :newest"
            values[":newest"] = {"N": str(evidence.newest_read)}
            names["#ts"] = _S_RANGE
        pages = self.client.get_paginator("query").paginate(
            TableName=self.scores_table, KeyConditionExpression=condition, ExpressionAttributeNames=names,
            ExpressionAttributeValues=values)
        for page in pages:
            for raw in page.get("Items", []):
                timestamp = int(raw[_S_RANGE]["N"])
                evidence.pairs[timestamp] = self._pair(model, raw)
                if evidence.newest_read is None or timestamp > evidence.newest_read:
                    evidence.newest_read = timestamp
        self._evidence[(symbol, model)] = evidence
        return evidence

    @classmethod
    def _pairs(cls, model: str, pages: Iterable[dict[str, Any]]) -> Iterator[tuple[Score, Score]]:
        """(model score, persistence score) per stored item, in the order the pages give them."""
        for page in pages:
            for raw in page.get("Items", []):
                yield cls._pair(model, raw)

    @staticmethod
    def _pair(model: str, raw: Mapping[str, Any]) -> tuple[Score, Score]:
        # Read straight from the wire format (the codec's Decimal round trip, for thousands of
        # items an evaluation, cost more than the rest of the evaluation); the same floats.
        return (
            Score(model, _number(raw, "abs_pct_error"), _flag(raw, "direction_hit"),
                  _number(raw, "predicted_move_pct", NAN), _number(raw, "realised_return", NAN)),
            Score(PERSISTENCE, _number(raw, "persistence_abs_pct_error"), _flag(raw, "persistence_direction_hit")),
        )

    def save_skills(self, symbol: str, skills: Mapping[str, Skill], *, at: int, expires_at: int) -> None:
        """Snapshot every model's skill as of an evaluation (the predictor reads the newest)."""
        self.client.put_item(
            TableName=self.scores_table,
            Item=_serialize({
                _S_HASH: score_series(symbol, SKILL_SERIES),
                _S_RANGE: at,
                "skills": {
                    m: {"samples": s.samples, "hit_rate": s.hit_rate, "mae_pct": s.mae_pct,
                        "persistence_mae_pct": s.persistence_mae_pct, "persistence_hit_rate": s.persistence_hit_rate,
                        "calls": s.calls, "call_hit_rate": s.call_hit_rate,
                        "break_even_hit_rate": s.break_even_hit_rate, "mean_net_bps": s.mean_net_bps,
                        "t_stat": s.t_stat}
                    for m, s in skills.items()
                },
                TTL_ATTRIBUTE: expires_at,
            }),
        )

    def latest_skills(self, symbol: str, models: Sequence[str] | None = None) -> dict[str, Skill]:
        """The newest skill snapshot (one item read); empty before the first evaluation."""
        response = self.client.query(
            TableName=self.scores_table,
            KeyConditionExpression="#series = :series",
            ExpressionAttributeNames={"#series": _S_HASH},
            ExpressionAttributeValues={":series": {"S": score_series(symbol, SKILL_SERIES)}},
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        if not items:
            return {}
        stored = _deserialize(items[0]).get("skills", {})
        return {
            m: Skill(m, int(v["samples"]), float(v["hit_rate"]), float(v["mae_pct"]), float(v["persistence_mae_pct"]),
                     _optional(v.get("persistence_hit_rate")), calls=int(v.get("calls", 0)),
                     call_hit_rate=_optional(v.get("call_hit_rate")),
                     break_even_hit_rate=_optional(v.get("break_even_hit_rate")),
                     mean_net_bps=float(v.get("mean_net_bps", 0)), t_stat=float(v.get("t_stat", 0)))
            for m, v in stored.items()
            if models is None or m in models
        }


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)
