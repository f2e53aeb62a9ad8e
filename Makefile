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

# The main job, offline: a local AWS emulator, then the price collector on replayed real candles.
demo: venv
	$(BIN)/btc-trader local up --stack dev
	$(BIN)/btc-trader local invoke price-collector --stack dev --at $(AT) \
	    --replay coinbase=$(DATA)/btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz \
	    --replay kraken=$(DATA)/btcusd_1m_kraken_2023-03-01_2023-03-21.csv.gz \
	    --replay binanceus=$(DATA)/btcusd_1m_binanceus_2023-03-01_2023-03-21.csv.gz \
	    --replay binanceus-usdc=$(DATA)/btcusdc_1m_binanceus_2023-03-01_2023-03-21.csv.gz
	$(BIN)/btc-trader local status

clean:
	rm -rf $(VENV) build .pytest_cache
