"""CoinGecko `/simple/price`: JSON numbers, `last_updated_at` in seconds, no key needed."""

from __future__ import annotations

from dataclasses import dataclass

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

# CoinGecko names coins by id, not ticker; extend this table to collect another base asset.
COIN_IDS = {"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "LTC": "litecoin"}


@dataclass
class CoinGeckoSource:
    session: requests.Session
    timeout_s: float
    name: str = "coingecko"
    base_url: str = "https://api.coingecko.com/api/v3"

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        base, quote = split_symbol(symbol)
        coin = COIN_IDS.get(base)
        if coin is None:
            raise SourceError(self.name, f"no CoinGecko id for {base} (known: {sorted(COIN_IDS)})")
        vs = quote.lower()
        url = f"{self.base_url}/simple/price"
        params = {
            "ids": coin,
            "vs_currencies": vs,
            "include_24hr_vol": "true",
            "include_24hr_change": "true",
            "include_last_updated_at": "true",
        }
        body = get_json(self.session, self.name, url, params=params, timeout_s=self.timeout_s)
        if not isinstance(body, dict):
            raise SourceError(self.name, f"expected an object, got {type(body).__name__}")
        if "status" in body and coin not in body:
            status = body["status"] if isinstance(body["status"], dict) else {}
            raise SourceError(
                self.name, f"error {preview(status.get('error_code'))}: {preview(status.get('error_message'))}"
            )
        entry = body.get(coin)
        if not isinstance(entry, dict):
            raise SourceError(self.name, f"no entry for {coin!r} in response")
        price = positive_price(self.name, number(self.name, entry, vs), vs)
        updated = number(self.name, entry, "last_updated_at")
        return FetchedQuote(
            SourceQuote(
                source=self.name,
                symbol=symbol,
                price=price,
                observed_at=epoch_seconds(self.name, updated, "last_updated_at"),
                volume_24h=non_negative(self.name, number(self.name, entry, f"{vs}_24h_vol", required=False),
                                        f"{vs}_24h_vol"),
                # Documented as null when the price is stale; that is not an error by itself.
                change_24h_pct=percent_change(
                    self.name, number(self.name, entry, f"{vs}_24h_change", required=False), f"{vs}_24h_change"
                ),
            ),
            raw={"url": url, "params": params, "body": body},
        )
