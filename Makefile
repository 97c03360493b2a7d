# The two commands a newcomer needs: `make up` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test bench contracts install browser clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ezone needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

install: $(STAMP)

up: $(STAMP)
	$(BIN)/ezone up

# The board page's tests drive a real headless Chromium: Debian's package, installed here when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the board page's browser test"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get install -y --no-install-recommends chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; } \
		|| { echo "Could not install chromium: run 'apt-get install chromium' (Debian/Ubuntu) and retry." >&2; exit 1; }; }
	@# axe-core for the pages' accessibility check, from npm at the version tests/browser/axe.py pins, into .axe/
	$(BIN)/python -m tests.browser.axe

test: $(STAMP) browser
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

contracts: $(STAMP)
	$(BIN)/python -m ezone_schemas.generate

clean:
	rm -rf $(VENV) .ezone .pytest_cache
