"""A simulated exchange account served over HTTP to ccxt's real exchange code (no network)."""

from tests.exchange_sim.binance import BinanceSim, OrderFault

__all__ = ["BinanceSim", "OrderFault"]
