"""Price collector Lambda: EventBridge schedule -> every symbol's price from every source.

Wiring only: parse the event, build the service once per cold start from the environment,
call it, meter and log what it did. The event's `time` is the clock of the run.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
from btc_trader.adapters.price_sources import FetchedQuote, build_session, build_sources
from btc_trader.adapters.s3_raw_payloads import S3RawPayloadStore
from btc_trader.adapters.timestream_prices import TimestreamPriceWriter
from btc_trader.domain.prices import InsufficientSourcesError
from btc_trader.event_fields import CollectionEvent, require_configured
from btc_trader.runtime_config import CollectorConfig
from btc_trader.services.price_collection import (
    CollectionLimits,
    CollectionOutcome,
    PriceCollectionService,
)
from btc_trader.telemetry import Telemetry

logger = Logger()
tracer = Tracer()
metrics = Metrics()
telemetry = Telemetry(metrics, logger)


class CollectionFailedError(RuntimeError):
    """At least one symbol could not be collected; raised so Lambda retries the event."""


@cache
def _config() -> CollectorConfig:
    return CollectorConfig.from_env(os.environ)


@cache
def _service() -> PriceCollectionService:
    config = _config()
    session = build_session(config.http_retries)
    timestream = (
        TimestreamPriceWriter(config.timestream_database, config.timestream_table)
        if config.timestream_enabled
        else None
    )
    return PriceCollectionService(
        sources=build_sources(
            config.price_sources, session=session, timeout_s=config.http_timeout_seconds
        ),
        prices=DynamoDBPriceRepository(config.prices_table),
        raw_payloads=S3RawPayloadStore(config.raw_bucket, config.raw_prefix),
        limits=CollectionLimits(
            min_sources=config.min_sources,
            max_divergence_bps=config.max_source_divergence_bps,
            max_staleness_s=config.max_source_staleness_seconds,
            ttl_days=config.price_ttl_days,
            interval_s=config.collection_interval_minutes * 60,
        ),
        timestream=timestream,
        fetch_hook=_traced_fetch,
    )


def _traced_fetch(source: str, fetch: Any) -> FetchedQuote:
    with tracer.provider.in_subsegment(f"## source {source}") as subsegment:
        subsegment.put_annotation("source", source)
        return fetch()


def _record(outcome: CollectionOutcome) -> None:
    if outcome.status == "already_collected":
        # A re-delivered event: counted so duplicates are visible; it changed nothing.
        telemetry.record("DuplicateCollections", 1)
        return
    for source, reason in outcome.sources_rejected.items():
        _count_source_failure(source)
        logger.warning("source rejected", extra={"source": source, "reason": reason})
    telemetry.record("PricesCollected", 1)
    telemetry.record("CollectedPrice", outcome.price, symbol=outcome.symbol)
    telemetry.record("SourceDivergenceBps", outcome.divergence_bps, symbol=outcome.symbol)


def _count_source_failure(source: str) -> None:
    telemetry.record("SourceFailures", 1, source=source)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CollectionEvent)
def lambda_handler(event: CollectionEvent, context: LambdaContext) -> dict[str, Any]:
    config = _config()
    at = int(event.time.timestamp())
    symbols = require_configured(event.symbols, config.symbols)
    logger.append_keys(symbols=symbols, sources=list(config.price_sources))
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for symbol in symbols:
        try:
            outcome = _service().collect(symbol, at)
        except InsufficientSourcesError as exc:
            telemetry.record("InsufficientSources", 1)
            for source in exc.rejected:
                _count_source_failure(source)
            logger.error("not enough valid sources", extra={"symbol": symbol, "rejected": exc.rejected})
            failures.append(str(exc))
            continue
        _record(outcome)
        logger.info(
            "price collected",
            extra={"symbol": symbol, "status": outcome.status, "price": outcome.price,
                   "sources_used": outcome.sources_used},
        )
        results.append(outcome.to_json())
    if failures:
        raise CollectionFailedError("; ".join(failures))
    return {"collected_at": event.time.isoformat().replace("+00:00", "Z"), "results": results}
