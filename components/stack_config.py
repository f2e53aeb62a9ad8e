"""The current Pulumi stack's settings: Pulumi's config handed to the one settings reader."""

from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config

from btc_trader.stack.settings import StackSettings, settings_from_pulumi_config


def load_settings() -> StackSettings:
    """Settings of the current Pulumi stack, read once from every namespace of its config."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return settings_from_pulumi_config(merged, pulumi.get_stack())
