"""Coinbase Exchange `/products/<id>/ticker`: strings, ISO time with varying fraction digits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests

from btc_trader.adapters.price_sources.base import (
    MAX_EPOCH_S,
    FetchedQuote,
    SourceError,
    get_json,
    non_negative,
    number,
    positive_price,
    preview,
)
from btc_trader.domain.prices import SourceQuote


@dataclass
class CoinbaseSource:
    session: requests.Session
    timeout_s: float
    name: str = "coinbase"
    base_url: str = "https://api.exchange.coinbase.com"

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        url = f"{self.base_url}/products/{symbol}/ticker"
        body = get_json(self.session, self.name, url, timeout_s=self.timeout_s)
        if not isinstance(body, dict):
            raise SourceError(self.name, f"expected an object, got {type(body).__name__}")
        if "message" in body and "price" not in body:
            raise SourceError(self.name, f"error: {preview(body['message'])}")
        price = positive_price(self.name, number(self.name, body, "price"), "price")
        time_text = body.get("time")
        if not isinstance(time_text, str):
            raise SourceError(self.name, f"missing or invalid field 'time': {preview(time_text)}")
        try:
            observed = datetime.fromisoformat(time_text.replace("Z", "+00:00"))
            observed_at = observed.timestamp()
        except (ValueError, OverflowError):
            raise SourceError(self.name, f"unreadable time {preview(time_text)}") from None
        if observed.tzinfo is None:
            raise SourceError(self.name, f"time without a timezone: {preview(time_text)}")
        if not 0 < observed_at < MAX_EPOCH_S:
            raise SourceError(self.name, f"field 'time' is not a plausible time: {preview(time_text)}")
        return FetchedQuote(
            SourceQuote(
                source=self.name,
                symbol=symbol,
                price=price,
                observed_at=int(observed_at),
                volume_24h=non_negative(self.name, number(self.name, body, "volume", required=False), "volume"),
            ),
            raw={"url": url, "body": body},
        )
