"""Every notebook runs top to bottom under `nbdev_test` (one pytest test per notebook).

Cells flagged `#| slow` or `#| gpu` (settings.ini `tst_flags`) are skipped here; `make test-all`
runs the slow ones, and the GPU ones run in the GPU check script. Extra flags can be passed with
MAO_NB_TEST_FLAGS="slow"."""
import os, subprocess
import pytest
from conftest import ROOT, BIN, notebooks


@pytest.mark.parametrize('nb', notebooks(), ids=lambda p: str(p.relative_to(ROOT/'nbs')))
def test_notebook(nb):
    cmd = [str(BIN/'nbdev_test'), '--path', str(nb), '--n_workers', '0']
    if os.environ.get('MAO_NB_TEST_FLAGS'): cmd += ['--flags', os.environ['MAO_NB_TEST_FLAGS']]
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and 'Failed' not in out, f'{nb.name} failed under nbdev_test:\n{out[-6000:]}'
