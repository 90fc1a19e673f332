# Two entry points a newcomer needs:  make demo   and   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv tools demo test serve clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,llama]'
	touch $@

venv: $(BIN)/.installed

tools:
	@scripts/ensure_tools.sh

demo: venv tools
	$(BIN)/autoresearch-bot demo

test: venv tools
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

clean:
	rm -rf $(VENV) var .cache
