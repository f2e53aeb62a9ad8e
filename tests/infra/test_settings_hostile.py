"""Hostile stack config: every file and every value is StackSettings or a SettingsError.

Stack files are broken line by line (YAML syntax, tabs, binary bytes, non-UTF-8, duplicate keys,
a list or a scalar at the top); values are replaced with hostile ones, both in the YAML the
CLI reads and in the string config Pulumi hands over. A SettingsError about the file names the
file and the line; nothing else may escape, and what is accepted is sane.
"""

from __future__ import annotations

import contextlib
import math
import random
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btc_trader.stack.settings import (
    NAMESPACE,
    SettingsError,
    StackSettings,
    load_stack_file,
    load_stack_with_overrides,
    settings_from_pulumi_config,
)
from tests.hostile import HOSTILE_SCALARS, mutations

REPO = Path(__file__).resolve().parents[2]
DEV_TEXT = (REPO / "Pulumi.dev.yaml").read_text()
DEV_CONFIG = yaml.safe_load(DEV_TEXT)["config"]
EXAMPLES = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
HOSTILE_LINES = st.sampled_from([
    "\t btc-trader:feeBps: 10", "config", "- a", "  - b", ": x", "{", "}", "[", "&anchor", "*alias", "!!python/object:os.system x",
    "  btc-trader:feeBps: 10", "  btc-trader:riskThreshold: .nan", "  btc-trader:feeBps: .inf", '  "btc-trader:x": "\\q"',
    "  btc-trade:riskThreshold: 0.9", "  riskThreshold: 0.9", "\x00", "%YAML 9.9", "---", "...", "  key: [1, 2",
    "  btc-trader:symbols: BTC-USD", "  btc-trader:modelWeights: {bedrock: 0}", "'", '"', "? complex", "  <<: *x",
])


def _load(text: str | bytes) -> StackSettings:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Pulumi.dev.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            return load_stack_file("dev", Path(folder))
        except SettingsError as exc:
            assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
            # Problems with the file itself say which file (and line); key problems name the key.
            assert all(path.name in p or f"{NAMESPACE}:" in p or "aws:" in p for p in exc.problems), exc.problems
            raise


def _assert_sane(stack: StackSettings) -> None:
    assert all(math.isfinite(w) and w >= 0 for w in stack.model_weights.values())
    assert any(stack.model_weights.get(m, 1.0) > 0 for m in stack.ml_models)
    assert 0 <= stack.risk_threshold <= 1 and stack.symbols
    assert not stack.enable_real_trading  # the dev stack never trades for real


@EXAMPLES
@given(data=st.data())
def test_stack_file_broken_line_by_line(data):
    lines = DEV_TEXT.splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(lines)))
        if data.draw(st.booleans()) and index < len(lines):
            lines[index] = data.draw(HOSTILE_LINES)
        else:
            lines.insert(index, data.draw(HOSTILE_LINES))
    with contextlib.suppress(SettingsError):
        _assert_sane(_load("\n".join(lines)))


@settings(max_examples=30)
@given(junk=st.binary(min_size=1, max_size=64), where=st.integers(0, len(DEV_TEXT)))
def test_binary_bytes_in_a_stack_file(junk, where):
    data = DEV_TEXT.encode()[:where] + junk + DEV_TEXT.encode()[where:]
    with contextlib.suppress(SettingsError):
        _assert_sane(_load(data))


@EXAMPLES
@given(data=st.data())
def test_stack_values_broken_once(data):
    config = data.draw(mutations(DEV_CONFIG, HOSTILE_SCALARS))
    if not isinstance(config, dict):
        config = {"config": config}
    text = yaml.safe_dump({"config": config}, allow_unicode=True)
    with contextlib.suppress(SettingsError):
        _assert_sane(_load(text))


@EXAMPLES
@given(data=st.data())
def test_pulumi_string_config_broken_once(data):
    import json

    config = data.draw(mutations(DEV_CONFIG, HOSTILE_SCALARS))
    if not isinstance(config, dict):
        return
    try:
        as_pulumi = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    except (ValueError, TypeError):
        return
    try:
        _assert_sane(settings_from_pulumi_config(as_pulumi, "dev"))
    except SettingsError as exc:
        assert exc.problems


def _one_edit(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    return rng.choice([word[:i] + word[i + 1:], word[:i] + "x" + word[i:], word[:i] + "_" + word[i + 1:],
                       word[:i] + word[i + 1:i + 2] + word[i:i + 1] + word[i + 2:]])


@settings(max_examples=40)
@given(seed=st.integers(0, 10**6), key=st.sampled_from(["riskThreshold", "enableRealTrading", "mlModels", "feeBps"]))
def test_a_namespace_close_to_ours_names_the_likely_key(seed, key):
    namespace = _one_edit(NAMESPACE, random.Random(seed))
    if namespace == NAMESPACE:
        return
    text = DEV_TEXT.replace("config:\n", f"config:\n  {namespace}:{key}: 1\n", 1)
    with pytest.raises(SettingsError, match=f"did you mean {NAMESPACE}:{key}"):
        _load(text)
    with pytest.raises(SettingsError, match=f"did you mean {NAMESPACE}:{key}"):
        settings_from_pulumi_config({f"{namespace}:{key}": "1", "aws:region": "us-east-1"}, "dev")


@pytest.mark.parametrize(("text", "message"), [
    ("config:\n  btc-trader:feeBps: [1, 2\n", r"Pulumi.dev.yaml:3: invalid YAML"),
    ("- a\n- b\n", r"Pulumi.dev.yaml:1: the top level must be a mapping .* got a list"),
    ("just a scalar\n", r"Pulumi.dev.yaml:1: the top level must be a mapping .* got a str"),
    ("config:\n  btc-trader:feeBps: 10\n  btc-trader:feeBps: 20\n", r"Pulumi.dev.yaml:3: .*written twice \(first on line 2\)"),
    ("config:\n\tbtc-trader:feeBps: 10\n", r"Pulumi.dev.yaml:2: invalid YAML"),
    (b"config:\n  btc-trader:feeBps: \xff\xfe\n", r"Pulumi.dev.yaml:2: not UTF-8 text"),
    ("config:\n  riskThreshold: 0.9\n", r"key 'riskThreshold' has no namespace; .* btc-trader:riskThreshold"),
    ("config:\n  btc-trader:modelWeights: {bedrock: .nan}\n", r"modelWeights .*finite"),
    ("config:\n  btc-trader:modelWeights: {bedrock: 0}\n", r"every enabled model \(bedrock\) weight 0"),
])
def test_file_problems_name_the_file_and_line(text, message):
    with pytest.raises(SettingsError, match=message):
        _load(text)


def test_a_provider_namespace_is_not_a_typo():
    assert _load(DEV_TEXT.replace("config:\n", "config:\n  pulumi:tags: {a: b}\n  random:seed: 1\n", 1))


def test_unknown_exchange_id_is_refused_only_with_real_trading():
    base = {"enableRealTrading": "true", "exchange": '{"id": "binanse", "sandbox": false, "secretName": "s"}'}
    config = {f"{NAMESPACE}:{k}": v for k, v in base.items()}
    with pytest.raises(SettingsError, match="'binanse' is not an exchange ccxt knows.*did you mean binance"):
        settings_from_pulumi_config(config, "prod")
    paper = {**config, f"{NAMESPACE}:enableRealTrading": "false"}
    assert settings_from_pulumi_config(paper, "prod").exchange.id == "binanse"


@pytest.mark.parametrize(("override", "message"), [
    ({"feeBps": "[1, 2"}, "not valid YAML"),
    ({"exchange..id": "x"}, "empty part"),
    ({"feeBps.x": "1"}, "feeBps is not an object"),
    ({"modelWeights.bedrock": ".nan"}, "finite"),
])
def test_overrides_are_settings_errors(override, message):
    with pytest.raises(SettingsError, match=message):
        load_stack_with_overrides("dev", override, REPO)
