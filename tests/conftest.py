"Shared set-up for the test suite: offline, CPU, repo paths."
import os, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('PLOTLY_RENDERER', 'plotly_mimetype')

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin folder, where nbdev's commands live


def notebooks():
    "Every notebook that nbdev tests: under nbs/, skipping scratch (`_*`) files and checkpoints."
    return sorted(p for p in (ROOT/'nbs').rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT/'nbs').parts))


# `make test` runs the suite in parallel (pytest-xdist, `-n TEST_WORKERS --dist loadgroup`). The longest tests start first,
# so that the workers end together; tests that share a heavy set-up or a Ray cluster run in one group (one worker).
LONGEST_FIRST = ('test_notebook[tutorials/', 'test_notebook[api/14_stage_a', "xdist_group('ray')", 'test_docs_site', 'test_cache',
                 'test_notebook[index.ipynb]', 'test_main_job', 'test_notebook[api/15_stage_b')


def pytest_collection_modifyitems(config, items):
    def rank(item):
        key = item.nodeid + ' ' + ' '.join(f"xdist_group({m.args[0]!r})" for m in item.iter_markers('xdist_group') if m.args)
        return next((i for i, k in enumerate(LONGEST_FIRST) if k in key), len(LONGEST_FIRST))
    items.sort(key=rank)  # stable: the rest keep their order
