VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv dev demo test browser-deps lint bench flower clean

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

test: $(STAMP) browser-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# Headless Chromium and its driver for tests/integration/test_browser_cors.py, from Debian.
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium and chromium-driver for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null; \
	else \
		echo "the browser test needs /usr/bin/chromium and /usr/bin/chromedriver:" \
			"run 'make browser-deps' as root, or 'sudo apt-get install chromium" \
			"chromium-driver'" >&2; \
		exit 1; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/run.py

flower: $(STAMP)
	$(VENV)/bin/cloudemy flower

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
