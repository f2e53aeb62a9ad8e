# Everything a newcomer needs: `make test` and `make demo` create the venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data
AT     ?= 2023-03-11T12:00:00Z

.PHONY: venv test lint demo clean bench chronos-proof

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q

# The Chronos endpoint loads and answers (tests/sagemaker/test_endpoint_proof.py): a throwaway venv
# under build/chronos-proof/ with the serving image's library versions (sagemaker/chronos/
# proof-requirements.txt), reused while those pins are unchanged; ~3 min when new, ~25 s after.
chronos-proof: venv
	BTC_TRADER_CHRONOS_PROOF=1 $(BIN)/python -m pytest -q tests/sagemaker/test_endpoint_proof.py

lint: venv
	$(BIN)/ruff check .

# The main job: the local AWS emulator with every resource of the dev stack, then the whole system —
# collector, predictor, risk manager and paper execution in the stack's real Step Functions workflow —
# on replayed real candles of the USDC de-peg week, one line per decision with its reasons.
# First the collector alone on four venues of 2023-03-11, the de-pegged BTC/USDC venue rejected
# as an outlier. Without ../shared/data it says so: the run then backfills recent exchange klines and
# trades live prices, or, offline, runs on a clearly labelled SYNTHETIC series.
VENUES = coinbase=btcusd_1m_coinbase kraken=btcusd_1m_kraken binanceus=btcusd_1m_binanceus \
         binanceus-usdc=btcusdc_1m_binanceus
WINDOW = _2023-03-01_2023-03-21.csv.gz
REPLAY = $(DATA)/btcusd_1m_coinbase$(WINDOW)
FROM  ?= 2023-03-10T06:00:00Z
TICKS ?= 48
PORT  ?= 4599

demo: venv
	$(BIN)/btc-trader local up --stack dev --port $(PORT)
	@if [ -f "$(REPLAY)" ]; then \
	  replays="$(foreach v,$(VENUES),--replay $(firstword $(subst =, ,$(v)))=$(DATA)/$(lastword $(subst =, ,$(v)))$(WINDOW))"; \
	  echo "btc-trader local invoke price-collector --at $(AT) $$replays"; \
	  $(BIN)/btc-trader local invoke price-collector --stack dev --at $(AT) $$replays 2>/dev/null || exit 1; \
	  echo "btc-trader local run --replay $(REPLAY) --from $(FROM) --ticks $(TICKS)"; \
	  $(BIN)/btc-trader local run --replay $(REPLAY) --from $(FROM) --ticks $(TICKS); \
	else \
	  echo "real candles not found in $(DATA): live exchange prices if reachable, else SYNTHETIC ones"; \
	  $(BIN)/btc-trader local run --ticks 6 --tick-seconds 5; \
	fi
	$(BIN)/btc-trader local trades
	$(BIN)/btc-trader local wallet
	@echo "the emulator keeps running: try 'btc-trader local logs', 'local status'; stop it with: $(BIN)/btc-trader local down --port $(PORT)"

bench: venv
	$(BIN)/python benchmarks/prediction_bench.py --data $(DATA) --out benchmarks/results/prediction.json
	$(BIN)/python benchmarks/backtest_bench.py --data $(DATA) --out benchmarks/results/backtest.json
	$(BIN)/python benchmarks/readme_figures.py   # the README's figures from what was just measured

clean:
	rm -rf $(VENV) build .pytest_cache
