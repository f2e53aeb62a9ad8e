"""`btc-trader local trades`: the trades, then each closed position's PnL and why it closed."""

import json

from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.cli import main
from btc_trader.local import emulator
from tests.domain.test_positions import fill

SYMBOL = "BTC-USD"  # a symbol the stack trades: another one is refused (#17)


def test_local_trades_shows_pnl_and_the_reason_each_position_closed(own_emulator, capsys):
    flatten = ["flatten: selling the whole position (0.02000000 BTC) because the kill switch is engaged"]
    records = [fill(1, "BUY", 0.01, 2_000), fill(2, "SELL", 0.01, 2_100, pnl=0.8),
               fill(3, "BUY", 0.02, 2_000), fill(4, "SELL", 0.02, 1_800, pnl=-4.1, reasons=flatten),
               fill(5, "BUY", 0.01, 1_900)]
    with emulator.aws_environment(own_emulator):
        store = DynamoDBTradingStore(own_emulator.names.table("trades"),
                                     own_emulator.names.table("trading-state"))
        for record in records:
            record = {**record, "symbol": SYMBOL, "mode": "paper", "client_order_id": record["trade_id"],
                      "trade_id": f"eth-{record['trade_id']}"}
            store.client.put_item(TableName=store.trades_table, Item=_item(record))
    port = str(own_emulator.port)
    assert main(["local", "trades", "--symbol", SYMBOL, "--port", port]) == 0
    out = capsys.readouterr().out
    assert "closed positions (2;" in out
    lines = out.split("closed positions", 1)[1].splitlines()
    assert any("SELL signal" in line and "0.8" in line for line in lines)
    assert any("kill switch flatten" in line and "-4.1" in line for line in lines)
    assert "total realised PnL -3.30 USD" in out and "open position: 0.01000000 BTC" in out
    assert main(["local", "trades", "--symbol", SYMBOL, "--port", port, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["closed_by"] for p in data["closed_positions"]] == ["SELL signal", "kill switch flatten"]
    assert len(data["trades"]) == 5 and data["open_position"]["closed_at"] is None


def _item(record):
    from btc_trader.adapters.dynamodb_codec import serialize

    return serialize(record)
