"""Stack configuration: the shipped stacks are valid; every bad value is named precisely."""

import re

import pulumi
import pytest

from btc_trader.stack.settings import (
    SettingsError,
    StackSettings,
    load_stack_file,
    parse_settings,
    stack_keys,
)
from components.stack_config import load_settings
from tests.infra.harness import run_program


def test_dev_stack_keeps_the_seed_values():
    dev = load_stack_file("dev")
    assert dev.price_collection_interval == 5
    assert dev.max_trade_amount == 100
    assert dev.enable_real_trading is False
    assert dev.ml_models == ("bedrock",)
    assert dev.risk_threshold == 0.7
    assert dev.timestream.enabled is False


def test_prod_stack_keeps_the_seed_values():
    prod = load_stack_file("prod")
    assert prod.price_collection_interval == 1
    assert prod.max_trade_amount == 10000
    assert prod.enable_real_trading is True
    assert prod.ml_models == ("bedrock", "huggingface", "custom")
    assert prod.risk_threshold == 0.85
    assert prod.exchange.secret_name, "real trading needs the double opt-in"


def test_defaults_are_safe():
    defaults = StackSettings()
    assert defaults.enable_real_trading is False
    assert defaults.exchange.sandbox is True
    assert defaults.timestream.enabled is False
    assert not defaults.bedrock.model_id.startswith("anthropic.claude-3-sonnet")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"riskThreshold": 1.7}, "btc-trader:riskThreshold must be between 0 and 1, got 1.7"),
        ({"riskThreshold": "high"}, "btc-trader:riskThreshold must be a number, got 'high'"),
        ({"priceCollectionInterval": 0}, "btc-trader:priceCollectionInterval must be between 1 and 1440, got 0"),
        ({"priceCollectionInterval": 2.5}, "btc-trader:priceCollectionInterval must be a whole number, got 2.5"),
        ({"maxTradeAmount": -5}, "btc-trader:maxTradeAmount must be between 0 and 1000000, got -5"),
        ({"enableRealTrading": "perhaps"}, "btc-trader:enableRealTrading must be true or false, got 'perhaps'"),
        ({"mlModels": ["bedrock", "gpt"]}, "btc-trader:mlModels must be one of 'bedrock', 'huggingface' or 'custom', got 'gpt'"),
        ({"mlModels": []}, "btc-trader:mlModels must not be empty, got []"),
        ({"priceSources": ["kraken", "bitstamp"]}, "btc-trader:priceSources must be one of"),
        ({"priceCollectoinInterval": 5}, "btc-trader:priceCollectoinInterval is not a known setting"),
        ({"timestream": {"enabled": True, "retention": 3}}, "btc-trader:timestream.retention is not a known setting"),
        ({"lambda": {"memoryMb": 64}}, "btc-trader:lambda.memoryMb must be between 128 and 10240, got 64"),
        ({"logRetentionDays": 10}, "btc-trader:logRetentionDays must be one of"),
        ({"minSources": 5}, "btc-trader:minSources must be at most the number of priceSources (4), got 5"),
        ({"priceSources": ["kraken", "kraken"], "minSources": 1}, "btc-trader:priceSources must not repeat a source"),
        ({"symbols": ["btcusd"]}, "btc-trader:symbols entries must look like BASE-QUOTE"),
        # Removed: the raw payloads are too small for S3 to move them to Glacier.
        ({"rawArchiveAfterDays": 30}, "btc-trader:rawArchiveAfterDays is not a known setting"),
        ({"priceCollectionInterval": 30, "tradingInterval": 60}, "btc-trader:maxPriceAgeSeconds must be at least priceCollectionInterval in seconds (1800), got 600"),
        ({"tradingInterval": 1}, "btc-trader:tradingInterval must be at least priceCollectionInterval (5), got 1"),
        ({"alertEmail": "not-an-address"}, "btc-trader:alertEmail has an invalid format, got 'not-an-address'"),
        ({"huggingface": {"deployEndpoint": True}}, "btc-trader:huggingface.deployEndpoint is true but 'huggingface' is not in"),
    ],
)
def test_bad_values_are_named(raw, message):
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, "staging")
    assert any(line.startswith(message) for line in caught.value.problems), caught.value.problems


def test_real_trading_needs_a_secret_and_never_on_dev():
    with pytest.raises(SettingsError, match="exchange.secretName is not set"):
        parse_settings({"enableRealTrading": True}, "prod")
    with pytest.raises(SettingsError, match="must be false on the dev stack"):
        parse_settings({"enableRealTrading": True, "exchange": {"secretName": "x"}}, "dev")
    assert parse_settings({"enableRealTrading": True, "exchange": {"secretName": "x"}}, "prod").enable_real_trading


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        parse_settings({"riskThreshold": 2, "maxTradeAmount": 0}, "dev")
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_load_through_pulumi_config(stack):
    loaded = {}

    def build():
        loaded["settings"] = load_settings()
        return pulumi.Output.from_input(None)

    run_program(stack, build)
    assert loaded["settings"] == load_stack_file(stack)


def test_pulumi_config_errors_name_the_key():
    def build():
        load_settings()

    with pytest.raises(SettingsError, match="btc-trader:riskThreshold must be between 0 and 1, got 1.7"):
        run_program("dev", build, overrides={"btc-trader:riskThreshold": "1.7"})
    with pytest.raises(SettingsError, match="btc-trader:unknownKey is not a known setting"):
        run_program("dev", build, overrides={"btc-trader:unknownKey": "1"})


def test_stack_keys_lists_every_top_level_key():
    keys = stack_keys()
    assert {"priceCollectionInterval", "maxTradeAmount", "enableRealTrading", "mlModels", "riskThreshold"} <= set(keys)
    assert keys["timestream"].enabled is False


def test_vpc_options_are_validated():
    network = parse_settings({"network": {"vpc": True}}, "dev").network
    assert (network.cidr, network.azs, network.nat_gateways, network.interface_endpoints) == ("10.20.0.0/16", 2, 1, ())
    cases = {
        "btc-trader:network.natGateways must be at most network.azs (2), got 3": {"vpc": True, "natGateways": 3},
        "btc-trader:network.cidr must be a private IPv4 network from /16 to /24": {"vpc": True, "cidr": "10.0.0.0/8"},
        "btc-trader:network.cidr must be an IPv4 network such as 10.20.0.0/16": {"vpc": True, "cidr": "10.20.0.1/16"},
        "btc-trader:network has VPC options ['natGateways'] but network.vpc is false": {"natGateways": 2},
        "btc-trader:network.interfaceEndpoints must be one of": {"vpc": True, "interfaceEndpoints": ["ec2"]},
        "btc-trader:network.azs must be between 2 and 6, got 1": {"vpc": True, "azs": 1},
    }
    for message, network in cases.items():
        with pytest.raises(SettingsError, match=re.escape(message)):
            parse_settings({"network": network}, "dev")


def test_monitoring_thresholds_are_validated():
    monitoring = parse_settings({}, "dev").monitoring
    assert (monitoring.lambda_error_rate_percent, monitoring.missed_collections, monitoring.drawdown_alarm_pct_of_limit,
            monitoring.min_model_skill) == (5, 3, 80, 0)
    with pytest.raises(SettingsError, match="btc-trader:monitoring.drawdownAlarmPctOfLimit must be between 0 and 100"):
        parse_settings({"monitoring": {"drawdownAlarmPctOfLimit": 100}}, "dev")
    with pytest.raises(SettingsError, match="btc-trader:monitoring.lambdaErrorRate is not a known setting"):
        parse_settings({"monitoring": {"lambdaErrorRate": 5}}, "dev")


def test_every_key_is_documented_and_the_readme_table_is_current():
    from btc_trader.stack.settings import KEY_DOCS, stack_keys_markdown
    from tests.conftest import REPO_ROOT as PROJECT_ROOT

    assert set(KEY_DOCS) == set(stack_keys())
    readme = (PROJECT_ROOT / "README.md").read_text()
    begin, end = "<!-- stack-keys:begin -->\n", "\n<!-- stack-keys:end -->"
    table = readme[readme.index(begin) + len(begin) : readme.index(end)]
    assert table == stack_keys_markdown(), "regenerate with: python -m btc_trader.stack.settings"
