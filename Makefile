VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv dev demo test lint bench flower clean

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,test]'
	touch $(STAMP)

venv: $(STAMP)

PORT ?= 8000

dev: $(STAMP)
	$(VENV)/bin/cloudemy dev --port $(PORT)

demo: $(STAMP)
	$(VENV)/bin/cloudemy demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/run.py

flower: $(STAMP)
	$(VENV)/bin/cloudemy flower

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
