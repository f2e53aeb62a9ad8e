"""`btc-trader trading reconcile` against a moto account and the simulated Binance account."""

import argparse
import json
from decimal import Decimal as D

import boto3
import pytest
import responses
from moto import mock_aws

from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.cli import main
from btc_trader.domain.orders import LiveGuard
from btc_trader.domain.risk import RiskState
from btc_trader.domain.wallet import PaperWallet
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from btc_trader.storage_schema import TABLES
from btc_trader.trading_cli import cmd_reconcile
from tests.aws_fakes import create_table
from tests.exchange_sim import BinanceSim

NAMES = ResourceNames("prod", "123456789012", "us-east-1")


@pytest.fixture
def account():
    sim = BinanceSim.for_exchange(load_stack_file("prod").exchange.id, balances={"BTC": D("0.004")},
                                  asks=[(D("20000"), D("5"))], bids=[(D("19990"), D("5"))])
    sim.balances[sim.quote] = D("900")
    with mock_aws(), responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        for spec in TABLES:
            create_table(spec, NAMES.table(spec.role))
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=load_stack_file("prod").exchange.secret_name, SecretString=json.dumps({"apiKey": "k", "secret": "s"}))
        store = DynamoDBTradingStore(NAMES.table("trades"), NAMES.table("trading-state"))
        # The ledger believes it holds 0.006 BTC: 0.002 more than the account.
        store.save_state("BTC-USD", PaperWallet(usd=900, btc=0.006, avg_cost=20_000, peak_equity_usd=1_020),
                         RiskState(), 0)
        store.save_guard("BTC-USD", LiveGuard(adopted=True), 0)
        yield sim, store


def test_reconcile_shows_both_sides_and_adopts_the_exchange_on_confirmation(account, capsys):
    _, store = account
    assert main(["trading", "reconcile", "--stack", "prod", "--aws", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "BTC" in out and "0.00600000" in out and "0.00400000" in out
    assert "BEYOND DUST" in out and "trading resumes" in out
    wallet, _, _ = store.load_state("BTC-USD", 10_000)
    assert wallet.btc == pytest.approx(0.004)
    guard, _ = store.load_guard("BTC-USD")
    assert guard.blocked_reason is None


def test_reconcile_without_confirmation_changes_nothing(account, capsys):
    _, store = account
    args = argparse.Namespace(stack="prod", symbol=None, aws=True, yes=False)
    assert cmd_reconcile(args, ask=lambda question: "n") == 1
    assert "nothing changed" in capsys.readouterr().out
    assert store.load_state("BTC-USD", 10_000)[0].btc == pytest.approx(0.006)
    assert store.load_guard("BTC-USD")[0].blocked_reason.startswith("ledger and exchange differ")


def test_reconcile_refuses_paper_stacks_and_local_runs(capsys):
    assert main(["trading", "reconcile", "--stack", "dev", "--aws"]) == 2
    assert "trades on paper" in capsys.readouterr().err
    assert main(["trading", "reconcile", "--stack", "prod"]) == 2
    assert "pass --aws" in capsys.readouterr().err
