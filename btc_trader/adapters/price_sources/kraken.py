"""Kraken `/0/public/Ticker`: errors arrive with HTTP 200, results keyed by Kraken's own names."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from btc_trader.adapters.price_sources.base import (
    FetchedQuote,
    SourceError,
    get_json,
    non_negative,
    positive_price,
    preview,
    split_symbol,
    to_float,
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

    def result_keys(self, symbol: str) -> set[str]:
        """The names Kraken may file the answer under: as asked, legacy X/Z-prefixed, or BASE/QUOTE."""
        base, quote = split_symbol(symbol)
        b, q = self.asset_aliases.get(base, base), self.asset_aliases.get(quote, quote)
        return {b + q, f"X{b}Z{q}", f"X{b}{q}", f"{b}Z{q}", f"{b}/{q}", f"{base}/{quote}"}

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        pair = self.pair(symbol)
        url = f"{self.base_url}/Ticker"
        params = {"pair": pair}
        body = get_json(self.session, self.name, url, params=params, timeout_s=self.timeout_s)
        if not isinstance(body, dict):
            raise SourceError(self.name, f"expected an object, got {type(body).__name__}")
        errors = body.get("error") or []
        if errors:
            shown = errors if isinstance(errors, list) else [errors]
            raise SourceError(self.name, "; ".join(preview(e) for e in shown[:5]))
        result = body.get("result")
        # Asked for XBTUSD, answered under XXBTZUSD: one entry, under one of the pair's names.
        if not isinstance(result, dict) or len(result) != 1:
            raise SourceError(self.name, f"expected one pair in 'result', got {preview(result)}")
        key, ticker = next(iter(result.items()))
        if key not in self.result_keys(symbol):
            raise SourceError(self.name, f"response is for pair {preview(key)}, asked {pair!r}")
        if not isinstance(ticker, dict):
            raise SourceError(self.name, f"ticker of {pair} is not an object: {preview(ticker)}")
        # `c` is [price, lot volume]: with one element missing, the other must not pass for the price.
        last_trade = ticker.get("c")
        if not isinstance(last_trade, list) or len(last_trade) != 2:
            raise SourceError(self.name, f"field 'c' must be [price, lot volume], got {preview(last_trade)}")
        price = positive_price(self.name, to_float(self.name, last_trade[0], "c[0]"), "c[0]")
        non_negative(self.name, to_float(self.name, last_trade[1], "c[1]"), "c[1]")
        volumes = ticker.get("v")
        volume = None
        if volumes is not None:
            if not isinstance(volumes, list) or len(volumes) != 2:
                raise SourceError(self.name, f"field 'v' must be [today, last 24 h], got {preview(volumes)}")
            volume = non_negative(self.name, to_float(self.name, volumes[1], "v[1]"), "v[1]")
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
