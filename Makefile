# Everything a newcomer needs: `make test` and `make demo` create the venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data

.PHONY: venv build test lint demo clean bench chronos-proof

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

# What `pulumi up` uploads, for the stacks' runtimes (sam build): build/<runtime>-<arch>/. pip runs
# only when requirements-lambda.txt, the runtime or the architecture change (cached in build/cache).
build: venv
	$(BIN)/btc-trader build --stack dev --stack prod

# The tests read what `build` wrote (the import test runs the bundles in the runtime's Python).
test: build
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
# on replayed real candles of the USDC de-peg week (without ../shared/data: the labelled SYNTHETIC
# series, the same everywhere). First the collector on four venues, the de-pegged BTC/USDC venue
# rejected as an outlier; then decisions under the stack's own settings, each refusal with its rule;
# when the stack's models refuse (they should, without an edge) the demo says why and runs the same
# window under the clearly labelled DEMONSTRATION profile, which fills BUYs and SELLs.
PORT  ?= 4599

demo: build
	$(BIN)/btc-trader local up --stack dev --port $(PORT)
	$(BIN)/btc-trader local demo --data $(DATA) --port $(PORT)
	$(BIN)/btc-trader local trades --port $(PORT)
	$(BIN)/btc-trader local wallet --port $(PORT)
	@echo "the emulator keeps running: try 'btc-trader local logs', 'local status', or watch trades again with the"
	@echo "README's recipe (Developing locally); stop it with: $(BIN)/btc-trader local down --port $(PORT)"

bench: build
	$(BIN)/python benchmarks/prediction_bench.py --data $(DATA) --out benchmarks/results/prediction.json
	$(BIN)/python benchmarks/backtest_bench.py --data $(DATA) --out benchmarks/results/backtest.json
	$(BIN)/python benchmarks/local_run_bench.py --data $(DATA) --out benchmarks/results/local_run.json
	$(BIN)/python benchmarks/cold_start_bench.py --stack dev
	$(BIN)/python benchmarks/emulator_request_bench.py --out benchmarks/results/emulator_request.json
	$(BIN)/python benchmarks/handler_invocation_bench.py --data $(DATA)   # steady state, per function
	$(BIN)/python benchmarks/readme_figures.py   # the README's figures from what was just measured

clean:
	rm -rf $(VENV) build .pytest_cache
