"""What an operator must know about the exchange keys before a stack trades for real.

`btc-trader exchange check` asks the exchange, through ccxt and the stack's own executor
configuration: are the keys valid, may they trade, may they withdraw (they should not), what does
the account hold, what are the market's limits, testnet or live. Every answer says where it came
from; what cannot be read is said, never guessed (a testnet has no API-restrictions endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ccxt

from btc_trader.adapters.exchange.ccxt_executor import CcxtExecutor


@dataclass(frozen=True)
class Finding:
    """One question about the keys: `ok` True/False, or None when it cannot be answered."""

    check: str
    ok: bool | None
    detail: str


@dataclass
class ExchangeCheck:
    exchange_id: str
    network: str  # "testnet" | "live"
    symbol: str
    market_symbol: str
    findings: list[Finding] = field(default_factory=list)
    balances: dict[str, dict[str, float]] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.ok is False]


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def check_exchange(executor: CcxtExecutor, symbol: str, sandbox: bool) -> ExchangeCheck:
    """Ask the exchange behind `executor` everything the report needs (read-only calls only)."""
    exchange = executor.exchange
    report = ExchangeCheck(executor.exchange_id, "testnet" if sandbox else "live", symbol,
                           executor.market_symbol(symbol))
    _market_limits(report, exchange)
    try:
        balance = exchange.fetch_balance()
    except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
        report.findings.append(Finding("keys valid", False, f"the exchange refused the keys ({_error(exc)})"))
        report.findings.append(Finding("trading permitted", None, "unknown: the keys were refused"))
        report.findings.append(Finding("withdrawals disabled", None, "unknown: the keys were refused"))
        return report
    except ccxt.BaseError as exc:
        report.findings.append(Finding("keys valid", None, f"could not ask the exchange ({_error(exc)})"))
        return report
    report.findings.append(Finding("keys valid", True, "an authenticated balance request succeeded"))
    withdrawals, restrictions = _withdrawals(exchange, executor.exchange_id, sandbox)
    report.findings.append(_trading(balance.get("info") or {}, restrictions, executor.exchange_id))
    report.findings.append(withdrawals)
    base, quote = report.market_symbol.split("/")
    for currency, total in (balance.get("total") or {}).items():
        if currency in (base, quote) or total:
            report.balances[currency] = {"free": float(balance["free"].get(currency) or 0),
                                         "used": float(balance["used"].get(currency) or 0), "total": float(total or 0)}
    for currency in (base, quote):
        report.balances.setdefault(currency, {"free": 0.0, "used": 0.0, "total": 0.0})
    return report


def _market_limits(report: ExchangeCheck, exchange: Any) -> None:
    try:
        exchange.load_markets()
        market = exchange.market(report.market_symbol)
    except ccxt.BaseError as exc:
        report.findings.append(Finding("market", False, f"{report.market_symbol}: {_error(exc)}"))
        return
    limits = market.get("limits") or {}
    report.limits = {
        "min_amount": (limits.get("amount") or {}).get("min"), "max_amount": (limits.get("amount") or {}).get("max"),
        "min_notional": (limits.get("cost") or {}).get("min"),
        "amount_step": (market.get("precision") or {}).get("amount"),
        "price_step": (market.get("precision") or {}).get("price"),
    }
    active = market.get("active")
    report.findings.append(Finding("market", active is not False,
                                   f"{market['symbol']} is {'not ' if active is False else ''}trading on "
                                   f"{report.exchange_id}"))


def _trading(info: dict[str, Any], restrictions: dict[str, Any], exchange_id: str) -> Finding:
    """The account's `canTrade` and `permissions` (Binance, with the balance) and, where it could
    be read, the key's own `enableSpotAndMarginTrading`; others may say nothing."""
    key_may_trade = restrictions.get("enableSpotAndMarginTrading")
    if "canTrade" not in info and key_may_trade is None:
        return Finding("trading permitted", None, f"{exchange_id} does not report it; "
                                                  "check the key's permissions on the exchange's website")
    permissions = info.get("permissions") or []
    account_ok = bool(info.get("canTrade", True)) and (not permissions or "SPOT" in permissions)
    detail = f"account canTrade={info.get('canTrade')}, permissions={permissions}"
    if key_may_trade is not None:
        detail += f"; key enableSpotAndMarginTrading={key_may_trade}"
    elif "canTrade" in info:
        detail += "; the key's own trading permission could not be read"
    return Finding("trading permitted", account_ok and key_may_trade is not False, detail)


def _withdrawals(exchange: Any, exchange_id: str, sandbox: bool) -> tuple[Finding, dict[str, Any]]:
    """A trading key must not be able to withdraw: read it from the API-restrictions endpoint
    (with the restrictions read, empty when they could not be)."""
    endpoint = getattr(exchange, "sapi_get_account_apirestrictions", None)
    if endpoint is None:
        return Finding("withdrawals disabled", None, f"{exchange_id} has no API-restrictions endpoint in ccxt: "
                                                     "check the key on the exchange's website"), {}
    try:
        restrictions = endpoint()
    except ccxt.NotSupported:
        where = "on the testnet" if sandbox else f"on {exchange_id}"
        return Finding("withdrawals disabled", None, f"cannot be read {where} (GET /sapi/v1/account/apiRestrictions "
                                                     "does not exist there): check the key on the exchange's "
                                                     "website"), {}
    except ccxt.BaseError as exc:
        return Finding("withdrawals disabled", None,
                       f"GET /sapi/v1/account/apiRestrictions failed ({_error(exc)})"), {}
    withdrawals = restrictions.get("enableWithdrawals")
    if withdrawals is None:
        return Finding("withdrawals disabled", None, "apiRestrictions did not say enableWithdrawals"), restrictions
    extra = f"enableWithdrawals={withdrawals}, ipRestrict={restrictions.get('ipRestrict')}"
    if withdrawals:
        return Finding("withdrawals disabled", False, f"the key CAN withdraw: turn that off ({extra})"), restrictions
    return Finding("withdrawals disabled", True, extra), restrictions
