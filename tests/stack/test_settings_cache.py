"""The cached stack-file load (per-invocation paths of `local run`): parsed once, never stale.

An edit takes effect at the next call even when it keeps the file's size and modification time;
a region that changes with the environment is honoured; a broken file is an error every time,
the same error as the uncached load.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from btc_trader.stack import settings as settings_module
from btc_trader.stack.settings import SettingsError, load_stack_file, load_stack_file_cached

REPO = Path(__file__).resolve().parents[2]
DEV_TEXT = (REPO / "Pulumi.dev.yaml").read_text()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.dev.yaml").write_text(DEV_TEXT)
    return tmp_path


def test_an_unchanged_file_is_parsed_once_and_equals_the_uncached_load(root, monkeypatch):
    first = load_stack_file_cached("dev", root)
    parsed = []
    monkeypatch.setattr(settings_module, "load_yaml_mapping", lambda *args: parsed.append(args) or {})
    assert load_stack_file_cached("dev", root) is first
    assert not parsed, "the YAML was parsed again"
    monkeypatch.undo()
    assert first == load_stack_file("dev", root)


def test_an_edit_is_seen_even_with_the_same_size_and_modification_time(root):
    path = root / "Pulumi.dev.yaml"
    assert load_stack_file_cached("dev", root).risk_threshold == 0.7
    stat = path.stat()
    edited = DEV_TEXT.replace("btc-trader:riskThreshold: 0.7 ", "btc-trader:riskThreshold: 0.8 ")
    assert edited != DEV_TEXT and len(edited) == len(DEV_TEXT)
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_stack_file_cached("dev", root).risk_threshold == 0.8


def test_a_broken_file_is_the_uncached_error_every_time_then_a_fix_is_read(root):
    path = root / "Pulumi.dev.yaml"
    good = load_stack_file_cached("dev", root)
    path.write_text(DEV_TEXT.replace("btc-trader:riskThreshold: 0.7", "btc-trader:riskThreshold: [0.7"))
    with pytest.raises(SettingsError) as uncached:
        load_stack_file("dev", root)
    for _ in range(2):
        with pytest.raises(SettingsError) as cached:
            load_stack_file_cached("dev", root)
        assert cached.value.problems == uncached.value.problems
    path.write_text(DEV_TEXT)
    assert load_stack_file_cached("dev", root) == good


def test_a_missing_file_is_the_uncached_error(tmp_path):
    with pytest.raises(SettingsError) as uncached:
        load_stack_file("dev", tmp_path)
    with pytest.raises(SettingsError) as cached:
        load_stack_file_cached("dev", tmp_path)
    assert cached.value.problems == uncached.value.problems


def test_the_region_from_the_environment_is_read_at_every_call(root, monkeypatch):
    # Without aws:region the region comes from AWS_REGION; dev's `us.` Bedrock profile serves
    # only us- regions, so the same bytes are valid in one region and refused in another.
    (root / "Pulumi.dev.yaml").write_text(DEV_TEXT.replace("  aws:region: us-east-1\n", ""))
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert load_stack_file_cached("dev", root).bedrock.model_id.startswith("us.")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with pytest.raises(SettingsError, match="does not serve eu-west-1"):
        load_stack_file_cached("dev", root)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    load_stack_file_cached("dev", root)
