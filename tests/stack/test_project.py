"""Commands that need the checkout find it as Pulumi finds its project, and say so when there is none."""

from __future__ import annotations

import subprocess
import sys

import pytest

from btc_trader.stack.project import PROJECT_DIR_VARIABLE, ProjectNotFoundError, find_project_root
from tests.conftest import REPO_ROOT


def test_the_checkout_is_found_from_a_nested_directory(monkeypatch):
    monkeypatch.delenv(PROJECT_DIR_VARIABLE, raising=False)
    assert find_project_root(REPO_ROOT / "btc_trader" / "stack") == REPO_ROOT


def test_outside_a_checkout_the_error_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(PROJECT_DIR_VARIABLE, raising=False)
    with pytest.raises(ProjectNotFoundError, match="no Pulumi.yaml in .* or any parent: run this command inside"):
        find_project_root(tmp_path)


def test_the_variable_points_at_a_checkout_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_DIR_VARIABLE, str(REPO_ROOT))
    assert find_project_root() == REPO_ROOT
    monkeypatch.setenv(PROJECT_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(ProjectNotFoundError, match=f"{PROJECT_DIR_VARIABLE}=.* holds no Pulumi.yaml"):
        find_project_root()


def test_a_command_run_outside_a_checkout_exits_2_with_that_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "btc_trader", "cost", "--stack", "dev"], cwd=tmp_path,
                            capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 2, result.stderr
    assert "no Pulumi.yaml in" in result.stderr and "btc-trader checkout" in result.stderr
