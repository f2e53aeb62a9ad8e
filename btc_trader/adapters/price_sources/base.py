"""What every price source shares: the port, its errors and a careful JSON GET."""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from btc_trader.domain.candles import MAX_EPOCH_S
from btc_trader.domain.prices import MAX_STORABLE_PRICE, MIN_STORABLE_PRICE, SourceQuote

USER_AGENT = "btc-trader/0.1 (+https://github.com/btc-trader)"

# A venue number is a plain decimal: no thousands separators, underscores, "NaN" or "Infinity"
# (Python's float() accepts all of those, and full-width digits too).
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
# A payload's preview in a reason: bounded in depth and length, so a hostile body cannot make
# the error message itself fail (repr of a deeply nested value recurses).
_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel, _PREVIEW.maxstring, _PREVIEW.maxother, _PREVIEW.maxlist, _PREVIEW.maxdict = 3, 60, 60, 4, 4


def preview(value: Any) -> str:
    """A short, always-computable repr of (part of) a payload for error reasons."""
    try:
        return _PREVIEW.repr(value)[:160]
    except (RecursionError, ValueError):
        return f"<unprintable {type(value).__name__}>"


class SourceError(RuntimeError):
    """A source gave no usable quote; `reason` is what gets logged, counted and stored."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class FetchedQuote:
    """A validated quote plus the payload it came from (archived to S3 as evidence)."""

    quote: SourceQuote
    raw: dict[str, Any]


class PriceSource(Protocol):
    """Port: one venue's latest price for a `BASE-QUOTE` symbol."""

    name: str

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        """Return the venue's quote, or raise SourceError with the reason."""
        ...


def split_symbol(symbol: str) -> tuple[str, str]:
    """`BTC-USD` -> (`BTC`, `USD`)."""
    base, _, quote = symbol.partition("-")
    if not base or not quote:
        raise ValueError(f"symbol must look like BASE-QUOTE, got {symbol!r}")
    return base, quote


def build_session(retries: int) -> requests.Session:
    """A pooled session that retries connection errors and 5xx a bounded number of times.

    4xx (including 429 and Binance's 451) are never retried: a rate limit or a geo-block does
    not go away within one collection run, and retrying only burns the venue's quota.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=0.2,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=8, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session


def get_json(
    session: requests.Session,
    source: str,
    url: str,
    *,
    params: dict[str, str] | None = None,
    timeout_s: float,
    fatal_statuses: dict[int, str] | None = None,
) -> Any:
    """GET a JSON body, turning every way it can go wrong into a SourceError."""
    try:
        response = session.get(url, params=params, timeout=(min(timeout_s, 3.05), timeout_s))
    except requests.Timeout:
        raise SourceError(source, f"timed out after {timeout_s:g} s") from None
    except requests.RequestException as exc:
        raise SourceError(source, f"network error: {type(exc).__name__}") from None
    status = response.status_code
    if fatal_statuses and status in fatal_statuses:
        raise SourceError(source, fatal_statuses[status])
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        hint = f", retry after {retry_after} s" if retry_after else ""
        raise SourceError(source, f"rate limited (HTTP 429{hint})")
    content_type = response.headers.get("Content-Type", "")
    text = response.text
    if "html" in content_type.lower() or text.lstrip().startswith("<"):
        raise SourceError(source, f"HTML page instead of JSON (HTTP {status})")
    if status >= 400:
        raise SourceError(source, f"HTTP {status}: {text[:160].strip()}")
    try:
        return response.json()
    except ValueError:  # also a JSON integer too long for int() (Python caps digit strings)
        raise SourceError(source, f"invalid JSON (HTTP {status}): {text[:80].strip()!r}") from None
    except RecursionError:
        raise SourceError(source, f"JSON nested too deeply to read (HTTP {status})") from None


def number(source: str, payload: dict[str, Any], key: str, *, required: bool = True) -> float | None:
    """A finite numeric field that venues send as a JSON number or a plain decimal string."""
    value = payload.get(key)
    if value is None:
        if required:
            raise SourceError(source, f"missing field {key!r}")
        return None
    return to_float(source, value, key)


def to_float(source: str, value: Any, key: str) -> float:
    """`value` as a finite float, or SourceError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SourceError(source, f"field {key!r} is not numeric: {preview(value)}")
    if isinstance(value, str) and value.strip().lstrip("+-").lower() in {"nan", "inf", "infinity"}:
        raise SourceError(source, f"field {key!r} is not finite: {preview(value)}")
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()):
        raise SourceError(source, f"field {key!r} is not numeric (a plain decimal expected): {preview(value)}")
    try:
        result = float(value)
    except (ValueError, OverflowError):  # OverflowError: a JSON integer hundreds of digits long
        raise SourceError(source, f"field {key!r} is not a representable number: {preview(value)}") from None
    if not math.isfinite(result):
        raise SourceError(source, f"field {key!r} is not finite: {preview(value)}")
    return result


def positive_price(source: str, value: float | None, key: str) -> float:
    """Reject zero, negative and unstorable prices at the edge, with the field's name."""
    if value is None or value <= 0:
        raise SourceError(source, f"field {key!r} must be a positive price, got {value!r}")
    if not MIN_STORABLE_PRICE <= value <= MAX_STORABLE_PRICE:
        raise SourceError(
            source, f"field {key!r} is {value!r}, outside the range a price is stored with "
            f"({MIN_STORABLE_PRICE:g}..{MAX_STORABLE_PRICE:g})"
        )
    return value


def non_negative(source: str, value: float | None, key: str) -> float | None:
    """An optional size (volume): absent is fine, negative is a broken payload."""
    if value is not None and value < 0:
        raise SourceError(source, f"field {key!r} must not be negative, got {value!r}")
    return value


def percent_change(source: str, value: float | None, key: str) -> float | None:
    """An optional % change: a price cannot fall more than 100 %."""
    if value is not None and value < -100:
        raise SourceError(source, f"field {key!r} is a fall of more than 100 %: {value!r}")
    return value


def epoch_seconds(source: str, value: float, key: str, *, unit_s: float = 1.0) -> int:
    """A venue timestamp (in `unit_s` seconds) as epoch seconds; must be after 1970."""
    seconds = value * unit_s
    if not 1 <= seconds < MAX_EPOCH_S:
        raise SourceError(source, f"field {key!r} is not a plausible time: {value!r}")
    return int(seconds)
