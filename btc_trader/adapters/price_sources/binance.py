"""Binance and Binance.US `/api/v3/ticker/24hr`: numbers as strings, times in milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from btc_trader.adapters.price_sources.base import (
    FetchedQuote,
    SourceError,
    epoch_seconds,
    get_json,
    non_negative,
    number,
    percent_change,
    positive_price,
    preview,
    split_symbol,
)
from btc_trader.domain.prices import SourceQuote

GEO_BLOCKED = (
    "HTTP 451: Binance refuses this location (US IPs and US cloud regions); "
    "use the 'binanceus' source there instead"
)


@dataclass
class BinanceSource:
    session: requests.Session
    timeout_s: float
    name: str = "binance"
    base_url: str = "https://api.binance.com"
    # Binance.com lists no BTC/USD pair; USDT is its dollar. The divergence check in the
    # aggregation catches a USDT de-peg.
    quote_aliases: dict[str, str] = field(default_factory=lambda: {"USD": "USDT"})

    def pair(self, symbol: str) -> str:
        base, quote = split_symbol(symbol)
        return base + self.quote_aliases.get(quote, quote)

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        pair = self.pair(symbol)
        url = f"{self.base_url}/api/v3/ticker/24hr"
        params = {"symbol": pair}
        body = get_json(
            self.session, self.name, url, params=params, timeout_s=self.timeout_s,
            fatal_statuses={451: GEO_BLOCKED},
        )
        if not isinstance(body, dict):
            raise SourceError(self.name, f"expected an object, got {type(body).__name__}")
        if "code" in body and "lastPrice" not in body:
            raise SourceError(self.name, f"error {preview(body.get('code'))}: {preview(body.get('msg'))}")
        if body.get("symbol") != pair:
            raise SourceError(self.name, f"response is for {preview(body.get('symbol'))}, asked {pair!r}")
        price = positive_price(self.name, number(self.name, body, "lastPrice"), "lastPrice")
        close_time_ms = number(self.name, body, "closeTime")
        return FetchedQuote(
            SourceQuote(
                source=self.name,
                symbol=symbol,
                price=price,
                observed_at=epoch_seconds(self.name, close_time_ms, "closeTime", unit_s=0.001),
                volume_24h=non_negative(self.name, number(self.name, body, "volume", required=False), "volume"),
                change_24h_pct=percent_change(
                    self.name, number(self.name, body, "priceChangePercent", required=False), "priceChangePercent"
                ),
            ),
            raw={"url": url, "params": params, "body": body},
        )


def binance_us(session: requests.Session, timeout_s: float) -> BinanceSource:
    """Binance.US: same API and shapes, real USD pairs, reachable from the US."""
    return BinanceSource(
        session, timeout_s, name="binanceus", base_url="https://api.binance.us", quote_aliases={}
    )
