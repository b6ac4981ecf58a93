# neuroclass: `make demo` trains the default model on Fashion-MNIST; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast data install clean

$(BIN)/neuroclass: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -e ".[dev]"
	touch $@

install: $(BIN)/neuroclass

# Fashion-MNIST: the Debian package where we can install it, else the official download.
data: install
	@if $(BIN)/python -c "import sys; from neuroclass.data.download import find_local; sys.exit(find_local('fashion-mnist') is None)"; then \
		echo "fashion-mnist: present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 && apt-get install -y dataset-fashion-mnist >/dev/null 2>&1; then \
		echo "fashion-mnist: installed the Debian package dataset-fashion-mnist"; \
	else \
		$(BIN)/neuroclass data get fashion-mnist; \
	fi

demo: data
	$(BIN)/neuroclass train fashion-mnist

# lint-imports checks the import layers (pyproject.toml, [tool.importlinter]); SCIPY_ARRAY_API
# lets scikit-learn's estimator checks include its array-API check instead of skipping it
test: install
	$(BIN)/lint-imports --no-cache
	SCIPY_ARRAY_API=1 $(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/lint-imports --no-cache
	SCIPY_ARRAY_API=1 $(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf runs .pytest_cache
