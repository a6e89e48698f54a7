"""Every notebook runs top to bottom under `nbdev_test`, all of them in ONE `nbdev_test` process, as nbdev's own CI
runs them: the heavy imports (torch, transformers, Ray) are paid once, not once per notebook, which halves the time
(measured in fresh clones on 2 cores: all notebooks 6 min 10 s in one process, against 11 min 54 s for the same
notebooks as one process each; 5 min 2 s in one process once the tutorial's offline rows were flagged slow). Each
notebook is still its own pytest test, with its own result and traceback.

Each notebook gets a fresh IPython shell (nbdev's `test_nb`); only imported modules are shared. Cells flagged `#| slow`
or `#| gpu` (settings.ini `tst_flags`) are skipped here; `make test-all` runs the slow ones, and the GPU ones run in the
GPU check script. Extra flags can be passed with MAO_NB_TEST_FLAGS="slow"."""
import os, re, subprocess
import pytest
from conftest import ROOT, BIN, notebooks

NOTEBOOKS = notebooks()


def _selected(session) -> list:
    "The notebooks whose tests this pytest session runs (all of them, or those picked with -k or a node id)."
    return sorted({item.callspec.params['nb'] for item in session.items
                   if item.originalname == 'test_notebook' and hasattr(item, 'callspec')})


@pytest.fixture(scope='session')
def nbdev_run(request) -> tuple:
    "Run the selected notebooks in one `nbdev_test` process; return (its output, the names of those that failed)."
    nbs = _selected(request.session)
    names = [nb.name for nb in nbs]
    assert len(set(names)) == len(names), f'nbdev_test reports failures by file name: two notebooks share a name: {names}'
    file_re = '^(?:' + '|'.join(re.escape(n) for n in names) + ')$'
    cmd = [str(BIN/'nbdev_test'), '--n_workers', '0', '--do_print', '--timing', '--file_re', file_re]
    if os.environ.get('MAO_NB_TEST_FLAGS'): cmd += ['--flags', os.environ['MAO_NB_TEST_FLAGS']]
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'MPLBACKEND': 'Agg', 'PYTHONUNBUFFERED': '1'}
    r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    m = re.search(r'Failed On The Following Notebooks:\n=+\n((?:\t.+\n?)+)', r.stdout)
    failed = {s.strip() for s in m.group(1).splitlines()} if m else set()
    assert (r.returncode == 0) == (not failed), f'nbdev_test exited with {r.returncode}:\n{r.stdout[-6000:]}'
    return r.stdout, failed


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT/'nbs')))
def test_notebook(nb, nbdev_run):
    out, failed = nbdev_run
    start = f'Starting {nb}'
    assert start in out, f'{nb.name} was not run by nbdev_test:\n{out[-3000:]}'
    own = out[out.index(start):]
    own = own[:own.index(f'- Completed {nb}')] if f'- Completed {nb}' in own else own
    assert nb.name not in failed, f'{nb.name} failed under nbdev_test:\n{own[-6000:]}'
