# glsmonai: `make demo` (train, predict, report on phantoms), `make test` and `make docs` (the site, into site/).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

# demo settings (a CPU-sized run; see docs/getting-started.md)
DEMO_DATA := data/iris_phantom
DEMO_TEST := data/iris_phantom_unseen
DEMO_OUT := runs/demo
DEMO_N := 60
DEMO_TEST_N := 20
DEMO_TEST_SEED := 1000
DEMO_SIZE := 128 144
# the CPU preset (bundles/gls/configs/cpu.json: 128 x 128, crops 32 x 32, 75 / 10 / 8 epochs)
DEMO_CONFIG := "['bundles/gls/configs/train.json','bundles/gls/configs/cpu.json']"

.PHONY: install test demo docs clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the pinned CPU wheel; a looser pin pulls several GB of CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	# the versions this release was tested with (constraints.txt)
	$(PY) -m pip install --quiet -e ".[test]" -c constraints.txt
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) -m glsmonai synth iris --out $(DEMO_DATA) --n $(DEMO_N) --seed 0 --size $(DEMO_SIZE) --if-absent
	$(PY) -m glsmonai synth iris --out $(DEMO_TEST) --n $(DEMO_TEST_N) --seed $(DEMO_TEST_SEED) --size $(DEMO_SIZE) --if-absent
	$(PY) -m monai.bundle run training --config_file $(DEMO_CONFIG) \
		--dataset_dir $(DEMO_DATA) --output_dir $(DEMO_OUT) --progress false
	$(PY) -m glsmonai predict -i $(DEMO_TEST)/images -o $(DEMO_OUT)/predictions -m $(DEMO_OUT)/models --labels $(DEMO_TEST)/labels
	$(PY) -m glsmonai evaluate --pred $(DEMO_OUT)/predictions --labels $(DEMO_TEST)/labels --csv $(DEMO_OUT)/report.csv

# the docs extra (MkDocs, Material for MkDocs, mkdocstrings), pinned by constraints.txt
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]" -c constraints.txt
	touch $(DOCS_STAMP)

# mkdocs.yml: --strict fails on a broken link or anchor and on a page missing from the nav
docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(DEMO_OUT)
