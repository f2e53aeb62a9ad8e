"""Stack settings that pass the shape checks but could never deploy or trade are refused up front,
naming the key, the value and the fix (issue: what ships where)."""

from __future__ import annotations

import pytest

from btc_trader.stack.naming import FUNCTION_ROLES, SCHEDULE_PURPOSES, ResourceNames
from btc_trader.stack.settings import (
    MAX_SYMBOLS,
    SettingsError,
    StackRegion,
    load_stack_file,
    parse_settings,
    resolve_region,
)

US_EAST_1 = StackRegion("us-east-1", "test")
LIVE = {"enableRealTrading": True,
        "exchange": {"id": "binance", "sandbox": False, "secretName": "btc-trader/x/exchange"}}


def refusal(raw: dict, stack: str = "staging", region: StackRegion = US_EAST_1) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, stack, region)
    return str(caught.value)


@pytest.mark.parametrize("stack", ["Prod", "my_stack", "v1.2", "-dev", "dev-", "dev--x", "1dev"])
def test_a_stack_name_that_cannot_name_a_bucket_is_refused(stack):
    message = refusal({}, stack)
    assert f"stack name {stack!r}" in message and "pulumi stack rename" in message


def test_the_longest_stack_name_that_fits_is_accepted_and_one_more_character_is_refused():
    # The models bucket btc-trader-<stack>-models-<account>-<region> is the tightest name: 63 characters.
    parse_settings({}, "s" * 22, US_EAST_1)
    message = refusal({}, "s" * 23)
    assert "models" in message and "passes its limit of 63" in message and "at most 22 characters" in message


def test_the_length_limit_follows_the_region():
    sydney = StackRegion("ap-southeast-2", "test")
    parse_settings({"bedrock": {"modelId": "apac.anthropic.claude-haiku-4-5-20251001-v1:0"}}, "s" * 17, sydney)
    message = refusal({"bedrock": {"modelId": "apac.anthropic.claude-haiku-4-5-20251001-v1:0"}}, "s" * 18, sydney)
    assert "ap-southeast-2" in message and "at most 17 characters" in message


def test_every_derived_name_respects_its_limit_for_the_longest_accepted_name():
    names = ResourceNames("s" * 22, "123456789012", "us-east-1")
    for physical in names.physical_names(FUNCTION_ROLES, SCHEDULE_PURPOSES):
        assert len(physical.name) <= physical.max_length, physical


def test_an_invalid_region_is_refused_with_its_source():
    message = refusal({}, "staging", StackRegion("US East", "Pulumi.staging.yaml aws:region"))
    assert "'US East'" in message and "Pulumi.staging.yaml aws:region" in message


def test_live_trading_on_binance_from_a_us_region_is_refused_with_the_fix():
    message = refusal(LIVE, "prod")
    assert "btc-trader:exchange.id 'binance'" in message and "us-east-1" in message
    assert "binanceus" in message and "HTTP 451" in message


def test_binance_is_fine_on_its_testnet_live_outside_the_us_and_as_a_price_source_anywhere():
    testnet = {**LIVE, "exchange": {**LIVE["exchange"], "sandbox": True}}
    assert parse_settings(testnet, "prod", US_EAST_1).exchange.sandbox
    frankfurt = StackRegion("eu-central-1", "test")
    eu_bedrock = {"bedrock": {"modelId": "eu.anthropic.claude-haiku-4-5-20251001-v1:0"}}
    assert parse_settings({**LIVE, **eu_bedrock}, "prod", frankfurt).exchange.id == "binance"
    assert "binance" in parse_settings({"priceSources": ["binance", "coinbase"]}, "staging", US_EAST_1).price_sources


def test_more_symbols_than_one_schedule_rule_can_target_are_refused():
    symbols = [f"C{i}X-USD" for i in range(MAX_SYMBOLS + 1)]
    message = refusal({"symbols": symbols})
    assert f"at most {MAX_SYMBOLS} symbols" in message and f"got {MAX_SYMBOLS + 1}" in message
    assert len(parse_settings({"symbols": symbols[:MAX_SYMBOLS]}, "staging", US_EAST_1).symbols) == MAX_SYMBOLS


def test_a_bedrock_profile_of_another_geography_is_refused():
    message = refusal({}, "staging", StackRegion("eu-west-1", "test"))
    assert "'us' inference profile" in message and "eu-west-1" in message


def test_the_region_comes_from_aws_region_then_the_environment_then_the_profile(tmp_path):
    config_file = tmp_path / "config"
    config_file.write_text("[profile trading]\nregion = eu-west-2\n")
    environ = {"AWS_CONFIG_FILE": str(config_file), "AWS_PROFILE": "trading"}
    assert resolve_region({"aws:region": "us-west-2"}, "s", {"AWS_REGION": "eu-west-1"}) == \
        StackRegion("us-west-2", "Pulumi.s.yaml aws:region")
    assert resolve_region({}, "s", {"AWS_DEFAULT_REGION": "eu-west-1", **environ}).source == \
        "the AWS_DEFAULT_REGION environment variable"
    assert resolve_region({}, "s", environ) == StackRegion("eu-west-2", f"[profile trading] in {config_file}")
    fallback = resolve_region({}, "s", {"AWS_CONFIG_FILE": str(tmp_path / "missing")})
    assert fallback.name == "us-east-1" and "no aws:region" in fallback.source


def test_the_shipped_prod_stack_deploys_and_survives_one_venue_outage_in_its_region():
    prod = load_stack_file("prod")
    assert prod.enable_real_trading and prod.exchange.secret_name  # still the double opt-in
    assert prod.exchange.id == "binanceus"
    # binance.com answers us-east-1 with 451: the other venues must cover minSources with one down.
    usable = [source for source in prod.price_sources if source != "binance"]
    assert len(usable) - 1 >= prod.min_sources
