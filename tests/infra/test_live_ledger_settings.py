"""Settings of the live ledger: maxSlippageBps, and live symbols that may not share an asset."""

import pytest

from btc_trader.stack.settings import SettingsError, load_stack_file, load_stack_with_overrides


def test_live_symbols_may_not_share_an_asset():
    with pytest.raises(SettingsError, match="symbols BTC-USD and ETH-USD share USD: a live ledger"):
        load_stack_with_overrides("prod", {"symbols": "[BTC-USD, ETH-USD]"})
    # Paper stacks keep one wallet per symbol: nothing is shared.
    assert load_stack_with_overrides("dev", {"symbols": "[BTC-USD, ETH-USD]"}).symbols == ("BTC-USD", "ETH-USD")


def test_max_slippage_has_a_safe_default_and_bounds():
    assert load_stack_file("prod").max_slippage_bps == 30
    with pytest.raises(SettingsError, match="maxSlippageBps must be between 0 and 500, got 0"):
        load_stack_with_overrides("dev", {"maxSlippageBps": "0"})
