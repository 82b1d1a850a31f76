# instructor-search: set-up, run, test.
# `make run` and `make test` work on a fresh machine: they create .venv, install the
# pinned CPU torch first (an unpinned torch would pull a multi-GB CUDA build), then the project.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup run test lint typecheck bench eval eval-ocr train sample clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install "$(TORCH_PIN)"
	$(BIN)/pip install -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/instructor-search serve

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The bench extra installs the LangChain stack the footprint part compares with (no torch of its own).
bench: setup
	$(BIN)/pip install -q -e ".[test,bench]"
	$(BIN)/instructor-search bench --record

eval: setup
	$(BIN)/instructor-search eval all
	$(BIN)/instructor-search eval ocr all --record

# OCR only: engine accuracy and speed, the garbage test, text vs image-only PDFs, the awkward PDFs.
eval-ocr: setup
	$(BIN)/instructor-search eval ocr all --record

# Instruction fine-tuning and its evaluation (long: run it in the background; log in data/train/train.log).
train: setup
	BIN=$(BIN) bash scripts/make_train.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
