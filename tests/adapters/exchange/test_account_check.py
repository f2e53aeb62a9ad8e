"""`btc-trader exchange check` through ccxt's real Binance code, served documented bodies (no network)."""

import copy
import re

import boto3
import pytest
import responses
from moto import mock_aws

from btc_trader.adapters.exchange.account_check import check_exchange
from btc_trader.adapters.exchange.ccxt_executor import CcxtExecutor
from btc_trader.cli import main
from tests.conftest import load_fixture

LIVE = "https://api.binance.com"
TESTNET = "https://testnet.binance.vision"
KEY, SECRET = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A", "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def restrictions(**changes):
    return {**load_fixture("binance_api_restrictions.json"), **changes}


def account():
    body = copy.deepcopy(load_fixture("binance_account.json"))
    body["balances"].append({"asset": "USDT", "free": "1250.50000000", "locked": "10.00000000"})
    return body


@pytest.fixture
def binance():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for host in (LIVE, TESTNET):
            mock.get(f"{host}/api/v3/exchangeInfo", json=load_fixture("binance_exchange_info_btcusdt.json"))
        yield mock


def serve(mock, host=LIVE, account_body=None, status=200, restriction_body=None):
    mock.get(re.compile(re.escape(f"{host}/api/v3/account") + r"\?.*"), json=account_body or account(), status=status)
    mock.get(re.compile(re.escape(f"{LIVE}/sapi/v1/account/apiRestrictions") + r"\?.*"),
             json=restriction_body or restrictions(enableSpotAndMarginTrading=True))


def findings(report):
    return {f.check: (f.ok, f.detail) for f in report.findings}


def test_a_ready_live_key(binance):
    serve(binance)
    report = check_exchange(CcxtExecutor("binance", KEY, SECRET, sandbox=False), "BTC-USD", sandbox=False)
    found = findings(report)
    assert report.network == "live" and report.market_symbol == "BTC/USDT" and not report.failed
    assert found["keys valid"][0] and found["market"][0]
    assert found["trading permitted"] == (True, "account canTrade=True, permissions=['SPOT']; "
                                                "key enableSpotAndMarginTrading=True")
    assert found["withdrawals disabled"] == (True, "enableWithdrawals=False, ipRestrict=False")
    assert report.balances["BTC"] == {"free": 4723846.89208129, "used": 0.0, "total": 4723846.89208129}
    assert report.balances["USDT"] == {"free": 1250.5, "used": 10.0, "total": 1260.5}
    assert report.limits["min_amount"] == 0.00001 and report.limits["min_notional"] == 5
    signed = [c.request.url for c in binance.calls if "/account" in c.request.url or "apiRestrictions" in c.request.url]
    assert signed and all("signature=" in url for url in signed)


def test_a_key_that_can_withdraw_or_cannot_trade_fails(binance):
    # The documented example itself: a key with spot trading off.
    serve(binance, restriction_body=restrictions(enableWithdrawals=True))
    report = check_exchange(CcxtExecutor("binance", KEY, SECRET, sandbox=False), "BTC-USD", sandbox=False)
    found = findings(report)
    assert found["withdrawals disabled"][0] is False and "the key CAN withdraw" in found["withdrawals disabled"][1]
    assert found["trading permitted"][0] is False and "enableSpotAndMarginTrading=False" in found["trading permitted"][1]
    assert {f.check for f in report.failed} == {"withdrawals disabled", "trading permitted"}


def test_testnet_says_what_it_cannot_read(binance):
    serve(binance, host=TESTNET)
    report = check_exchange(CcxtExecutor("binance", KEY, SECRET, sandbox=True), "BTC-USD", sandbox=True)
    found = findings(report)
    assert report.network == "testnet" and found["keys valid"][0] is True
    assert found["withdrawals disabled"][0] is None
    assert found["withdrawals disabled"][1].startswith("cannot be read on the testnet")
    assert found["trading permitted"] == (True, "account canTrade=True, permissions=['SPOT']; the key's own "
                                                "trading permission could not be read")
    assert not any("sapi" in c.request.url for c in binance.calls), "no call leaves for the live /sapi"


def test_refused_keys(binance):
    serve(binance, account_body=load_fixture("binance_error_invalid_api_key.json"), status=401)
    report = check_exchange(CcxtExecutor("binance", KEY, SECRET, sandbox=False), "BTC-USD", sandbox=False)
    found = findings(report)
    assert found["keys valid"][0] is False and "Invalid API-key" in found["keys valid"][1]
    assert found["trading permitted"][0] is None


def test_cli_reads_the_stacks_secret_and_reports(capsys):
    """The prod stack trades BTC/USD on Binance.US (the same API family, its own host)."""
    host = "https://api.binance.us"
    info = copy.deepcopy(load_fixture("binance_exchange_info_btcusdt.json"))
    info["symbols"][0] |= {"symbol": "BTCUSD", "quoteAsset": "USD"}
    balances = account()
    balances["balances"][-1]["asset"] = "USD"
    # moto first: it patches requests too, and the mock started last answers.
    with mock_aws(), responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{host}/api/v3/exchangeInfo", json=info)
        mock.get(re.compile(re.escape(f"{host}/api/v3/account") + r"\?.*"), json=balances)
        mock.get(re.compile(re.escape(f"{host}/sapi/v1/account/apiRestrictions") + r"\?.*"),
                 json=restrictions(enableSpotAndMarginTrading=True))
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="btc-trader/prod/exchange", SecretString=f'{{"apiKey": "{KEY}", "secret": "{SECRET}"}}')
        code = main(["exchange", "check", "--stack", "prod", "--aws"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("binanceus LIVE (sandbox: false), keys from btc-trader/prod/exchange in the Secrets Manager of AWS (")
    assert "  ok   withdrawals disabled: enableWithdrawals=False" in out
    assert "market BTC/USD: min amount 1e-05" in out and "min notional 5" in out
    assert "balance USD: free 1250.5, in orders 10, total 1260.5" in out
    assert main(["exchange", "check", "--stack", "dev", "--aws"]) == 2
    assert "stack dev has no exchange.secretName" in capsys.readouterr().err
