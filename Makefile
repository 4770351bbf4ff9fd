# `make test` and `make demo` create .venv when it is missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
# the CPU/CUDA build of torch to install; override with e.g. `make test TORCH="torch==2.5.1"` (see DEVELOPERS.md)
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: test lint api-docs install demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# reinstall only when the package's metadata changes; the demo needs only the core dependencies
$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.installed-core
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# visdom (optional: its test skips without it) builds only with setuptools<81 and no build isolation
	-$(BIN)/python -m pip install --quiet "setuptools<81" && \
		$(BIN)/python -m pip install --quiet --no-build-isolation "visdom>=0.2.4"
	touch $@

install: $(VENV)/.installed

# the first ten minutes: built-in data, a small STTS-A, evaluation, inference on held-out videos
DEMO_RUN ?= runs/demo
DEMO_DATA := data/synthetic-motion
demo: $(VENV)/.installed-core
	$(BIN)/stts prepare synthetic-motion --out $(DEMO_DATA)
	rm -rf $(DEMO_RUN)
	$(BIN)/stts train --data_type synthetic-motion --preset small --epochs 6 --out $(DEMO_RUN)
	$(BIN)/stts evaluate $(DEMO_RUN)/best.pt --split test --views 3x1 --out $(DEMO_RUN)/evaluation
	$(BIN)/stts infer $(DEMO_DATA)/videos/UCF-101/*/v_*_g01_c01.avi --checkpoint $(DEMO_RUN)/best.pt \
		--out $(DEMO_RUN)/inference
	@echo
	@echo "demo done:"
	@echo "  run folder       $(DEMO_RUN)  (statistics.csv, best.pt, TensorBoard events)"
	@echo "  plots            $$(ls $(DEMO_RUN)/*.png | tr '\n' ' ')"
	@echo "  evaluation       $(DEMO_RUN)/evaluation/summary.json, confusion.png"
	@echo "  annotated video  $$(ls $(DEMO_RUN)/inference/*.annotated.mp4 | head -n 1)"

lint: install
	$(BIN)/ruff check src tests benchmarks docs

# the API page (docs/api.md) from the docstrings of what `import stts` exports, so that it cannot fall behind them;
# a docstring or annotation pdoc cannot read fails the build (pdoc's warnings made errors)
api-docs: install
	rm -rf build/api
	$(BIN)/python -W error::UserWarning -m pdoc --docformat restructuredtext -o build/api stts '!stts\..*'
	@echo "API page: build/api/stts.html"

# one thread per test process: the tests' tensors are tiny, and the DDP tests run two processes
# the tests in 2 processes (pytest-xdist): 5 min 35 s on our 2-core CPU, 10 min 38 s in one
TEST_WORKERS ?= 2
test: lint api-docs
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n $(TEST_WORKERS)

# one markdown table per script in benchmarks/results/<kind>/, the tables the README quotes; the kind is the
# machine's (benchmarks/device_kind.py: the CPU's family, instruction set and cores; bench_gpu's, the GPU's name),
# so that no run overwrites another kind's tables. A table replaces the old one only once its script succeeded.
bench: install
	cpu=$$($(BIN)/python benchmarks/device_kind.py) && gpu=$$($(BIN)/python benchmarks/device_kind.py --gpu) && \
	for script in benchmarks/bench_*.py; do \
		name=$$(basename $$script .py); \
		case $$name in bench_gpu) kind=$$gpu;; *) kind=$$cpu;; esac; \
		out=benchmarks/results/$$kind/$$name.md; \
		echo "== $$name -> $$out"; \
		mkdir -p benchmarks/results/$$kind; \
		$(BIN)/python $$script > $$out.part || { rm -f $$out.part; exit 1; }; \
		mv $$out.part $$out; \
		cat $$out; \
	done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
