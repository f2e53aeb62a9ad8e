"""Kraken `/0/public/Ticker`: errors arrive with HTTP 200, results keyed by Kraken's own names."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from btc_trader.adapters.price_sources.base import (
    FetchedQuote,
    SourceError,
    get_json,
    number,
    positive_price,
    split_symbol,
)
from btc_trader.domain.prices import SourceQuote


@dataclass
class KrakenSource:
    session: requests.Session
    timeout_s: float
    name: str = "kraken"
    base_url: str = "https://api.kraken.com/0/public"
    asset_aliases: dict[str, str] = field(default_factory=lambda: {"BTC": "XBT"})

    def pair(self, symbol: str) -> str:
        base, quote = split_symbol(symbol)
        return self.asset_aliases.get(base, base) + self.asset_aliases.get(quote, quote)

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        pair = self.pair(symbol)
        url = f"{self.base_url}/Ticker"
        params = {"pair": pair}
        body = get_json(self.session, self.name, url, params=params, timeout_s=self.timeout_s)
        if not isinstance(body, dict):
            raise SourceError(self.name, f"expected an object, got {type(body).__name__}")
        errors = body.get("error") or []
        if errors:
            raise SourceError(self.name, "; ".join(str(e) for e in errors))
        result = body.get("result")
        # Asked for XBTUSD, answered under XXBTZUSD: take the single entry, whatever its key.
        if not isinstance(result, dict) or len(result) != 1:
            raise SourceError(self.name, f"expected one pair in 'result', got {result!r:.80}")
        ticker = next(iter(result.values()))
        last_trade = ticker.get("c") if isinstance(ticker, dict) else None
        if not isinstance(last_trade, list) or not last_trade:
            raise SourceError(self.name, "missing field 'c' (last trade)")
        price = positive_price(self.name, number(self.name, {"c": last_trade[0]}, "c"), "c")
        volumes = ticker.get("v")
        volume = None
        if isinstance(volumes, list) and len(volumes) == 2:
            volume = number(self.name, {"v": volumes[1]}, "v", required=False)
        return FetchedQuote(
            SourceQuote(
                source=self.name,
                symbol=symbol,
                price=price,
                # The ticker carries no timestamp; Kraken serves it live, so it is as of now.
                observed_at=at,
                volume_24h=volume,
                # Kraken's `o` is today's open (00:00 UTC), not 24 h ago: no 24 h change here.
            ),
            raw={"url": url, "params": params, "body": body},
        )
