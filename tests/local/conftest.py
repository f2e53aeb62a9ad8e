"""One real moto server on 127.0.0.1 for the local-runner tests (loopback only)."""

from __future__ import annotations

import socket

import pytest

from btc_trader.local import emulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def btc_home(tmp_path_factory):
    return tmp_path_factory.mktemp("btc-trader-home")


@pytest.fixture(scope="session")
def running_emulator(btc_home):
    """Started through the same code path as `btc-trader local up`, stopped at the end."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BTC_TRADER_HOME", str(btc_home))
    port = free_port()
    state, started = emulator.start("dev", port)
    assert started
    yield state
    emulator.stop(port)
    mp.undo()


@pytest.fixture
def home(btc_home, monkeypatch):
    monkeypatch.setenv("BTC_TRADER_HOME", str(btc_home))
    return btc_home


@pytest.fixture
def own_emulator(tmp_path, monkeypatch):
    """An emulator alone in its own home: what it holds is only what the test stored (a fresh
    wallet; the session's emulator is shared with other tests' trades)."""
    monkeypatch.setenv("BTC_TRADER_HOME", str(tmp_path / "home"))
    port = free_port()
    state, _ = emulator.start("dev", port)
    yield state
    emulator.stop(port)
