"""Coinbase Exchange `/products/<id>/ticker`: strings, ISO time with varying fraction digits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests

from btc_trader.adapters.price_sources.base import (
    FetchedQuote,
    SourceError,
    get_json,
    number,
    positive_price,
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
            raise SourceError(self.name, f"error: {body['message']}")
        price = positive_price(self.name, number(self.name, body, "price"), "price")
        time_text = body.get("time")
        if not isinstance(time_text, str):
            raise SourceError(self.name, f"missing or invalid field 'time': {time_text!r}")
        try:
            observed = datetime.fromisoformat(time_text.replace("Z", "+00:00"))
        except ValueError:
            raise SourceError(self.name, f"unreadable time {time_text!r}") from None
        if observed.tzinfo is None:
            raise SourceError(self.name, f"time without a timezone: {time_text!r}")
        return FetchedQuote(
            SourceQuote(
                source=self.name,
                symbol=symbol,
                price=price,
                observed_at=int(observed.timestamp()),
                volume_24h=number(self.name, body, "volume", required=False),
            ),
            raw={"url": url, "body": body},
        )
