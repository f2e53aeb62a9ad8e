"""Trades (intent-first audit trail) and the wallet/risk state, in DynamoDB.

A trade is written PENDING before any order is sent. Its final status and the wallet that
results from it are written in ONE transaction, guarded by the state's version, so a crash can
leave a PENDING trade (which the next run reconciles) but never a wallet that disagrees with
its trades.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from btc_trader.adapters.aws_clients import LazyClient
from btc_trader.adapters.dynamodb_codec import deserialize as _de
from btc_trader.adapters.dynamodb_codec import serialize as _ser
from btc_trader.domain.orders import check_transition
from btc_trader.domain.risk import Lease, RiskState
from btc_trader.domain.wallet import PaperWallet
from btc_trader.storage_schema import LEASE_KEY_PREFIX


class ConcurrentUpdateError(RuntimeError):
    """The state changed under us (another execution); retry from a fresh read."""


def update_clause(fields: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """`, #f0 = :f0 ...`, names and values for the fields to SET.

    A None field is left out (DynamoDB has no value for it, and a name without its value makes
    the whole request, a transaction included, invalid); a non-finite number is refused before
    anything is written, naming the field.
    """
    present = {k: v for k, v in fields.items() if v is not None}
    for key, value in present.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"trade field {key} must be a finite number, got {value}")
    names = {f"#f{i}": k for i, k in enumerate(present)}
    values = {f":f{i}": v for i, v in enumerate(present.values())}
    sets = "".join(f", #f{i} = :f{i}" for i in range(len(present)))
    return sets, names, values


class DynamoDBTradingStore(LazyClient):
    service = "dynamodb"

    def __init__(self, trades_table: str, state_table: str, client: Any | None = None):
        self.trades_table = trades_table
        self.state_table = state_table
        self._client = client


    # --- wallet and risk state -----------------------------------------------------------------

    def load_state(self, symbol: str, starting_cash: float) -> tuple[PaperWallet, RiskState, int]:
        """(wallet, risk state, version); a new symbol starts with the paper starting cash."""
        response = self.client.get_item(TableName=self.state_table, Key=_ser({"symbol": symbol}), ConsistentRead=True)
        if "Item" not in response:
            return PaperWallet.start(starting_cash), RiskState(), 0
        item = _de(response["Item"])
        return PaperWallet(**item["wallet"]), RiskState(**item["risk"]), int(item["version"])

    def load_decision(self, symbol: str) -> tuple[dict[str, Any] | None, int]:
        """(the risk decision stored with the state, the state's version); None when there is none."""
        response = self.client.get_item(TableName=self.state_table, Key=_ser({"symbol": symbol}), ConsistentRead=True)
        if "Item" not in response:
            return None, 0
        item = _de(response["Item"])
        return item.get("decision"), int(item["version"])

    def _state_put(self, symbol: str, wallet: PaperWallet, risk: RiskState, version: int,
                   decision: dict[str, Any] | None = None) -> dict[str, Any]:
        item = {"symbol": symbol, "wallet": asdict(wallet), "risk": asdict(risk), "version": version + 1,
                "decision": decision}
        return {
            "TableName": self.state_table,
            "Item": _ser(item),
            "ConditionExpression": "attribute_not_exists(symbol) OR version = :v",
            "ExpressionAttributeValues": _ser({":v": version}),
        }

    def save_state(self, symbol: str, wallet: PaperWallet, risk: RiskState, version: int,
                   decision: dict[str, Any] | None = None) -> int:
        """Store if nobody else did since `version`; returns the new version. `decision` is the
        risk manager's verdict the executor will hold its intent against (any later write drops it)."""
        try:
            self.client.put_item(**self._state_put(symbol, wallet, risk, version, decision))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentUpdateError(f"trading state of {symbol} changed since version {version}") from None
            raise
        return version + 1

    # --- the per-symbol lease ------------------------------------------------------------------

    def acquire_lease(self, symbol: str, holder: str, now: int, ttl_s: int) -> Lease:
        """Take `symbol`'s lease until now + ttl_s unless another holder's lease is still live.

        The holder may take it again (a retried CheckRisk); an expired lease goes to whoever
        asks. Not acquired: the lease as it stands, to say who holds it until when.
        """
        key = _ser({"symbol": LEASE_KEY_PREFIX + symbol})
        try:
            self.client.put_item(
                TableName=self.state_table,
                Item=_ser({"symbol": LEASE_KEY_PREFIX + symbol, "holder": holder, "acquired_at": now,
                           "expires_at": now + ttl_s}),
                ConditionExpression="attribute_not_exists(symbol) OR expires_at <= :now OR holder = :me",
                ExpressionAttributeValues=_ser({":now": now, ":me": holder}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            item = self.client.get_item(TableName=self.state_table, Key=key, ConsistentRead=True).get("Item")
            current = _de(item) if item else {"holder": "unknown", "expires_at": now}
            return Lease(symbol, str(current["holder"]), int(current["expires_at"]), acquired=False)
        return Lease(symbol, holder, now + ttl_s, acquired=True)

    def lease(self, symbol: str) -> Lease | None:
        """`symbol`'s lease as stored (possibly expired), or None."""
        item = self.client.get_item(TableName=self.state_table, Key=_ser({"symbol": LEASE_KEY_PREFIX + symbol}),
                                    ConsistentRead=True).get("Item")
        if item is None:
            return None
        lease = _de(item)
        return Lease(symbol, str(lease["holder"]), int(lease["expires_at"]), acquired=False)

    def release_lease(self, symbol: str, holder: str) -> bool:
        """Delete `holder`'s lease (what the state machine does when an execution ends)."""
        try:
            self.client.delete_item(
                TableName=self.state_table, Key=_ser({"symbol": LEASE_KEY_PREFIX + symbol}),
                ConditionExpression="holder = :me", ExpressionAttributeValues=_ser({":me": holder}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- trades --------------------------------------------------------------------------------

    def get_trade(self, trade_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.trades_table, Key=_ser({"trade_id": trade_id}),
                                        ConsistentRead=True)
        return _de(response["Item"]) if "Item" in response else None

    def record_pending(self, trade: dict[str, Any]) -> bool:
        """Write the intent before the order; False when this trade id already exists."""
        try:
            self.client.put_item(
                TableName=self.trades_table,
                Item=_ser({**trade, "status": "PENDING"}),
                ConditionExpression="attribute_not_exists(trade_id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def settle(self, trade_id: str, current_status: str, new_status: str, fields: dict[str, Any],
               symbol: str, wallet: PaperWallet, risk: RiskState, version: int) -> int:
        """Final trade status and the resulting wallet, atomically; returns the new version."""
        check_transition(current_status, new_status)
        sets, names, values = update_clause(fields)
        update = {
            "TableName": self.trades_table,
            "Key": _ser({"trade_id": trade_id}),
            "UpdateExpression": f"SET #status = :new{sets}",
            "ConditionExpression": "#status = :current",
            "ExpressionAttributeNames": {"#status": "status", **names},
            "ExpressionAttributeValues": _ser({":new": new_status, ":current": current_status, **values}),
        }
        try:
            self.client.transact_write_items(TransactItems=[
                {"Update": update}, {"Put": self._state_put(symbol, wallet, risk, version)},
            ])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConcurrentUpdateError(f"trade {trade_id} or the state of {symbol} changed meanwhile") from None
            raise
        return version + 1

    def mark(self, trade_id: str, current_status: str, new_status: str, fields: dict[str, Any]) -> None:
        """Change a trade's status without touching the wallet (REJECTED, FAILED)."""
        check_transition(current_status, new_status)
        sets, names, values = update_clause(fields)
        self.client.update_item(
            TableName=self.trades_table, Key=_ser({"trade_id": trade_id}),
            UpdateExpression=f"SET #status = :new{sets}", ConditionExpression="#status = :current",
            ExpressionAttributeNames={"#status": "status", **names},
            ExpressionAttributeValues=_ser({":new": new_status, ":current": current_status, **values}),
        )

    def recent_trades(self, symbol: str, limit: int = 50) -> list[dict[str, Any]]:
        response = self.client.query(
            TableName=self.trades_table, IndexName="by_symbol_time",
            KeyConditionExpression="symbol = :s", ExpressionAttributeValues=_ser({":s": symbol}),
            ScanIndexForward=False, Limit=limit,
        )
        return [_de(i) for i in response.get("Items", [])]
