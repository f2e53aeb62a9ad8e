# Everything a newcomer needs: `make test` and `make demo` create the venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data
AT     ?= 2023-03-11T12:00:00Z

.PHONY: venv test lint demo clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

# The main job, offline: the local AWS emulator with the dev stack's resources, then the price
# collector on four venues' real candles of the USDC de-peg (2023-03-11), the de-pegged BTC/USDC
# venue rejected as an outlier. Without ../shared/data it says so and uses synthetic candles.
VENUES = coinbase=btcusd_1m_coinbase kraken=btcusd_1m_kraken binanceus=btcusd_1m_binanceus \
         binanceus-usdc=btcusdc_1m_binanceus
WINDOW = _2023-03-01_2023-03-21.csv.gz
SYNTHETIC = .btc-trader/synthetic

demo: venv
	$(BIN)/btc-trader local up --stack dev
	@if [ -d "$(DATA)" ]; then \
	  replays="$(foreach v,$(VENUES),--replay $(firstword $(subst =, ,$(v)))=$(DATA)/$(lastword $(subst =, ,$(v)))$(WINDOW))"; \
	else \
	  echo "real candles not found in $(DATA): replaying SYNTHETIC candles instead"; \
	  replays=$$($(BIN)/btc-trader data synthetic --out $(SYNTHETIC) --at $(AT) | sed 's/^/--replay /'); \
	fi; \
	echo "btc-trader local invoke price-collector --at $(AT) $$replays"; \
	$(BIN)/btc-trader local invoke price-collector --stack dev --at $(AT) $$replays 2>/dev/null
	@echo "the emulator keeps running for further commands; stop it with: $(BIN)/btc-trader local down"

bench: venv
	$(BIN)/python benchmarks/prediction_bench.py --data $(DATA)
	$(BIN)/python benchmarks/backtest_bench.py --data $(DATA)

clean:
	rm -rf $(VENV) build .pytest_cache
