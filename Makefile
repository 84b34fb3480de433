# unitehub.platform: the two commands a newcomer runs are `make deploy` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INVENTORY ?= inventories/local
VERSION ?= $(shell cat examples/app/VERSION)
SLOT ?= auto
MOLECULE_CMD ?= flock /tmp/unitehub-stack.lock env PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule test
PYTEST_ARGS ?=

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help os-prereqs venv stack deploy rollback status health test unit integration lint docs sanity package molecule bench clean fleet fleet-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

os-prereqs: ## OS packages the virtualenv, the sanity, registry and TLS tests and the local CA need (Debian)
	@need=""; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || need="$$need python3-venv python3-pip"; \
	command -v shellcheck >/dev/null 2>&1 || need="$$need shellcheck"; \
	command -v docker-registry >/dev/null 2>&1 || need="$$need docker-registry"; \
	command -v git >/dev/null 2>&1 || need="$$need git"; \
	command -v openssl >/dev/null 2>&1 || need="$$need openssl"; \
	command -v curl >/dev/null 2>&1 || need="$$need curl"; \
	if [ -n "$$need" ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$need; \
	fi

$(BIN)/.installed: requirements.txt requirements-dev.txt | os-prereqs
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed ## create .venv with runtime and dev requirements

stack: venv ## provision the local stack: dockerd, base image, PostgreSQL, PgBouncer, Redis, nginx
	flock /tmp/unitehub-stack.lock $(BIN)/ansible-playbook -i $(INVENTORY) playbooks/site.yml

deploy: stack ## build the reference app and deploy it blue-green, then show what is live
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/deploy.yml -e slot=$(SLOT) -e version=$(VERSION)
	@$(BIN)/python -c 'import json,urllib.request as u; r=u.urlopen("http://127.0.0.1:8080/api/version", timeout=5); v=json.load(r); print("\nThe app answers at http://127.0.0.1:8080 : live slot %s, version %s" % (v["slot"], v["version"]))'

rollback: venv ## switch back to the previous slot recorded in the deploy state
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/rollback.yml

status: venv ## table of slots, versions, health and the last deploys
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/status.yml

health: venv ## probe every component of the inventory
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/health.yml

# Module and module_utils tests run in a pytest process without controller code, as
# ansible-test units runs them (tests/unit/plugins/modules/conftest.py says why).
TARGET_UNIT_TESTS := tests/unit/plugins/modules tests/unit/plugins/module_utils

unit: venv ## unit tests of plugins and of the reference app
	$(BIN)/pytest -q -m 'not integration' $(TARGET_UNIT_TESTS) $(PYTEST_ARGS)
	$(BIN)/pytest -q -m 'not integration' tests/unit tests/app $(addprefix --ignore=,$(TARGET_UNIT_TESTS)) $(PYTEST_ARGS)

integration: stack ## integration tests against the real local stack
	$(BIN)/pytest -q --durations=25 -m integration tests/integration tests/app $(PYTEST_ARGS)

lint: venv ## ansible-lint (production profile), changelog fragments, role READMEs up to date
	$(BIN)/ansible-lint
	$(BIN)/antsibull-changelog lint
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	$(BIN)/python tools/role_docs.py --check

docs: venv ## write roles/*/README.md from each role's meta/argument_specs.yml
	$(BIN)/python tools/role_docs.py

sanity: venv ## ansible-test sanity, Python 3.11, offline, no Docker
	tests/sanity/run.sh

package: venv ## build the collection, install the tarball to a temp path, use it by FQCN only
	$(BIN)/pytest -q -m integration tests/integration/test_packaging.py $(PYTEST_ARGS)

molecule: stack ## molecule test: converge, idempotence, verify (deploy, rollback), destroy
	$(MOLECULE_CMD)

# lint and sanity only read the tree and time nothing, so they run side by side; the tests
# after them run one at a time (the stack tests time what they measure).
test: venv ## the whole suite; non-zero on any failure
	$(MAKE) --no-print-directory -j2 --output-sync=target lint sanity
	$(MAKE) --no-print-directory unit integration molecule

bench: stack ## benchmarks; they print their figures
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The base image is built once, on the machine's engine (by make stack, only when the image
# is missing there), and copied into each app host's engine; the base_image role's
# base_image_name names it.
FLEET_INVENTORY := inventories/fleet
FLEET_BASE_IMAGE ?= unitehub/base:bookworm

fleet: venv ## a local fleet (2 LBs, 2 app hosts, db, cache; docs/fleet.md), provisioned over SSH, the app deployed
	docker image inspect $(FLEET_BASE_IMAGE) >/dev/null 2>&1 || $(MAKE) --no-print-directory stack
	$(BIN)/python tools/fleet.py up -i $(FLEET_INVENTORY)
	$(BIN)/ansible-playbook -i $(FLEET_INVENTORY) playbooks/site.yml
	$(BIN)/python tools/fleet.py load-image -i $(FLEET_INVENTORY) --image $(FLEET_BASE_IMAGE)
	$(BIN)/ansible-playbook -i $(FLEET_INVENTORY) playbooks/deploy.yml -e version=$(VERSION)
	$(BIN)/ansible-playbook -i $(FLEET_INVENTORY) playbooks/status.yml

fleet-down: ## stop the local fleet and remove every file it made
	$(PYTHON) tools/fleet.py down

clean: ## remove the virtualenv and test output
	rm -rf $(VENV) .pytest_cache tests/output .cache/ansible-test
