# Two entry points a newcomer needs:  make demo   and   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv jail demo test serve clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,llama]'
	touch $@

venv: $(BIN)/.installed

# The jail for candidate code (bot/experiments/jail.py): bubblewrap. Installed here when missing and we are
# root on Debian/Ubuntu; else say how (without it the local executor refuses candidates, their tests skip).
APT_BWRAP := DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null
jail:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the jail for candidate code)"; \
	    $(APT_BWRAP) 2>&1 || { apt-get update -q >/dev/null && $(APT_BWRAP); }; \
	  else echo "bubblewrap (bwrap) is missing: sudo apt-get install bubblewrap (else no candidates run)"; fi; }

demo: venv jail
	$(BIN)/autoresearch-bot demo

test: venv jail
	$(BIN)/python -m pytest -q -p no:cacheprovider tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

clean:
	rm -rf $(VENV) var .cache
