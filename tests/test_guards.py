"""Guards that a green run could otherwise hide: the library is what the notebooks export, the
notebooks are clean, and README.md is what nbs/index.ipynb renders to.

The export and clean guards work on a copy of the project in a temporary folder, so they never
touch the working tree."""
import shutil, subprocess, os
from pathlib import Path
from conftest import ROOT, BIN


def _copy_project(tmp: Path) -> Path:
    dst = tmp/'proj'
    shutil.copytree(ROOT/'nbs', dst/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc'))
    shutil.copytree(ROOT/'mao_nb', dst/'mao_nb', ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(ROOT/'settings.ini', dst/'settings.ini')
    return dst


def _run(cmd, cwd):
    r = subprocess.run([str(BIN/cmd)], cwd=cwd, capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, f'{cmd} failed:\n{r.stdout}\n{r.stderr}'


def _files(folder: Path, pattern: str) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob(pattern))
            if '.ipynb_checkpoints' not in p.parts and '__pycache__' not in p.parts}


def test_library_in_sync_with_notebooks(tmp_path):
    "nbdev_export must leave mao_nb/ unchanged: the library was exported from these notebooks."
    dst = _copy_project(tmp_path)
    _run('nbdev_export', dst)
    before, after = _files(ROOT/'mao_nb', '*.py'), _files(dst/'mao_nb', '*.py')
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f'notebooks and library out of sync (run nbdev_export): {changed}'


def test_notebooks_clean(tmp_path):
    "nbdev_clean must leave every notebook unchanged."
    dst = _copy_project(tmp_path)
    _run('nbdev_clean', dst)
    before, after = _files(ROOT/'nbs', '*.ipynb'), _files(dst/'nbs', '*.ipynb')
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert not changed, f'notebooks not clean (run nbdev_clean): {changed}'


def test_readme_matches_index():
    "README.md is generated from nbs/index.ipynb (`mao_nb readme`); the two must agree."
    from mao_nb.dev.docs import make_readme
    assert (ROOT/'README.md').read_text() == make_readme(ROOT/'nbs'/'index.ipynb'), \
        'README.md differs from nbs/index.ipynb: run `make export` (or `mao_nb readme`)'


def test_ci_runs_the_readme_test_command():
    "`.ci/run` calls exactly the README's test command."
    readme, ci = (ROOT/'README.md').read_text(), (ROOT/'.ci'/'run').read_text()
    assert 'make test' in readme and 'make test' in ci.splitlines()[-1]


def test_import_cells_hold_only_imports():
    """nbdev's docs build (Quarto's and ours) executes every non-exported cell that contains an import,
    out of context: such a cell must hold imports only, or the docs fail with a NameError."""
    import ast, json, re
    from conftest import notebooks
    bad = []
    for p in notebooks():
        for i, c in enumerate(json.loads(p.read_text())['cells']):
            src = ''.join(c['source'])
            if c['cell_type'] != 'code' or re.search(r'^\s*#\|\s*(export|exports|exporti)\b', src, re.M): continue
            try: tree = ast.parse(src)
            except SyntaxError: continue
            if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)) and \
               not all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body):
                bad.append(f'{p.name} cell {i}: {src.splitlines()[0][:60]}')
    assert not bad, 'cells mixing imports with other code (move the imports to their own cell):\n' + '\n'.join(bad)


def test_gpu_check_script_matches_the_notebooks():
    "benchmarks/gpu_check.sh parses, and every notebook it runs with --flags gpu exists and has a `gpu` cell."
    import re
    script = ROOT/'benchmarks'/'gpu_check.sh'
    r = subprocess.run(['bash', '-n', str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = re.search(r'for nb in ([\w/ ]+); do', script.read_text()).group(1).split()
    assert names, 'gpu_check.sh names no notebook'
    flagged = sorted(p.relative_to(ROOT/'nbs').with_suffix('').as_posix() for p in (ROOT/'nbs').rglob('*.ipynb') if '#| gpu' in p.read_text())
    assert sorted(names) == flagged, f'gpu_check.sh runs {sorted(names)}, but the notebooks with gpu cells are {flagged}'


def test_notebooks_round_trip_through_execnb(tmp_path):
    "Every notebook reads and writes back with execnb (nbdev's notebook I/O, which the docs build uses)."
    from execnb.nbio import read_nb, write_nb
    bad = []
    for p in sorted((ROOT/'nbs').rglob('*.ipynb')):
        if any(part.startswith(('_', '.')) for part in p.relative_to(ROOT/'nbs').parts): continue
        try: write_nb(read_nb(p), tmp_path/p.name)
        except Exception as e: bad.append(f'{p.relative_to(ROOT)}: {type(e).__name__}: {e}')
    assert not bad, 'notebooks nbdev cannot read:\n' + '\n'.join(bad)


def test_shipped_fitted_files_match_the_generator(monkeypatch):
    "The scorer, backbone and adapter shipped in the project record the generator version they were fitted to; a bump refuses them."
    import numpy as np, pytest
    from mao_nb import haystack
    from mao_nb.proposals import score_candidates, CANDIDATE_FEATURES, OFFLINE_SCORER
    from mao_nb.shipped import default_backbone
    from mao_nb.cli import default_adapter
    F = np.zeros((1, len(CANDIDATE_FEATURES)))
    default_backbone(); default_adapter(); score_candidates(F)  # the shipped files pass today
    monkeypatch.setattr(haystack, 'GENERATOR_VERSION', haystack.GENERATOR_VERSION + 1)  # as if the generator had changed
    for f, what in ((default_backbone, 'mao_vit'), (default_adapter, 'mao_vit_stage_a'), (lambda: score_candidates(F), 'OFFLINE_SCORER')):
        with pytest.raises(RuntimeError, match=f'{what}.*generator is now version'): f()
    score_candidates(F, scorer=OFFLINE_SCORER)  # an explicit scorer is the caller's business


def test_built_package_leaves_out_the_dev_tooling(monkeypatch):
    "setup.py leaves the docs tooling (mao_nb.dev) out of the built package, and only it; no library module imports it at load."
    import re, runpy, setuptools
    seen = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kw: seen.update(kw))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT/'setup.py'))
    shipped, on_disk = set(seen['packages']), set(setuptools.find_packages(str(ROOT), include=['mao_nb', 'mao_nb.*']))
    assert 'mao_nb' in shipped and on_disk - shipped == {'mao_nb.dev'}, (sorted(shipped), sorted(on_disk))
    for p in sorted((ROOT/'mao_nb').glob('*.py')):
        assert not re.search(r'^(?:from|import)\s+(?:mao_nb)?\.?dev\b', p.read_text(), flags=re.M), f'{p.name} imports mao_nb.dev'


def test_saved_outputs_show_everywhere():
    """Every saved plotly figure carries a static PNG (GitHub, nbviewer and VS Code draw no plotly JSON); no output is
    a widget view (a saved progress bar is frozen and draws nothing without a kernel); no output shows a machine's
    paths. `make run-nbs` ensures all three (`mao_nb.dev.docs.finish_notebook`)."""
    import json, re
    machine = re.compile(r'/(?:work|home|root|Users)/\S+|/tmp/ipykernel_|[A-Z]:\\\\Users')
    bad = []
    from conftest import notebooks
    for f in notebooks():  # scratch notebooks (`_*`) and checkpoints left out, as nbdev leaves them out
        rel = f.relative_to(ROOT).as_posix(); nb = json.loads(f.read_text())
        if 'widgets' in nb.get('metadata', {}): bad.append(f'{rel}: saved widget state in the metadata')
        for i, c in enumerate(nb['cells']):
            for o in c.get('outputs', []):
                d = o.get('data', {})
                if 'application/vnd.plotly.v1+json' in d and 'image/png' not in d: bad.append(f'{rel} cell {i}: a plotly figure without its PNG')
                if 'application/vnd.jupyter.widget-view+json' in d: bad.append(f'{rel} cell {i}: a saved widget view')
                text = ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in d.items() if k.startswith('text/'))
                if machine.search(text): bad.append(f'{rel} cell {i}: a machine path: {machine.search(text).group(0)[:60]}')
    assert not bad, f'{len(bad)} outputs (run `make run-nbs NBS=...`, or finish_notebook on the notebook):\n' + '\n'.join(bad[:40])


def test_library_has_no_unused_or_undefined_names():
    """pyflakes over the library: no unused import, no undefined name. A name that only a notebook's examples use is
    imported in that notebook's hidden cell, not exported into the module."""
    import sys
    r = subprocess.run([sys.executable, '-m', 'pyflakes', 'mao_nb'], cwd=ROOT, capture_output=True, text=True)
    found = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and '_modidx.py' not in l]
    assert not found, 'pyflakes:\n' + '\n'.join(found)


def _exported_cell_sizes(folder: Path) -> list:
    import json, re
    sizes = []
    for p in sorted(folder.glob('*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            src = ''.join(c['source'])
            if c['cell_type'] == 'code' and re.match(r'#\|\s*exports?\b', src):
                sizes.append(sum(1 for l in src.splitlines() if not l.startswith('#|')))
    return sizes


def test_modules_and_cells_stay_small():
    """One concept a module (none over 600 lines) and one idea an exported cell (median at most 12 lines in nbs/api),
    as in nbdev's and fastcore's own notebooks."""
    import statistics
    long = {p.name: n for p in sorted((ROOT/'mao_nb').rglob('*.py')) if p.name != '_modidx.py'
            and (n := len(p.read_text().splitlines())) > 600}
    assert not long, f'modules over 600 lines (split them by concept): {long}'
    sizes = _exported_cell_sizes(ROOT/'nbs'/'api')
    assert len(sizes) > 100 and statistics.median(sizes) <= 12, f'median exported cell {statistics.median(sizes)} lines (at most 12)'
