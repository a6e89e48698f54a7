"""The oldest transformers the library declares (settings.ini: transformers>=5.17): the code that reaches into the
models' blocks (backbones' `run_blocks`, LeGrad, Stage A's LoRA targets and adapters, Stage B) and the GPU check's
CPU smoke run under transformers 5.17.0, the version of the GPU machines this project is lent.

transformers is pure Python: `make` installs 5.17.0 with its huggingface_hub 1.33.0 into a side folder
(`.venv/compat/transformers-5.17`, `--no-deps`), which these tests put first on PYTHONPATH. In 5.17 a DINOv2 block
takes one argument, its attention module returns a plain tensor (the probabilities come from an inner module), and its
projections are called `query`/`value`, not `q_proj`/`v_proj`: the newest 5.x differs on all three."""
import json, os, subprocess, sys
import pytest
from conftest import ROOT, BIN

SIDE = ROOT/'.venv'/'compat'/'transformers-5.17'
NOTEBOOKS = ('04_backbones', '10_legrad', '14_stage_a', '15_stage_b')


def _env():
    if not (SIDE/'transformers').is_dir():
        pytest.fail(f'{SIDE} is missing: `make setup` installs transformers 5.17.0 there', pytrace=False)
    return {**os.environ, 'PYTHONPATH': os.pathsep.join([str(SIDE), str(ROOT)]), 'HF_HUB_OFFLINE': '1', 'CUDA_VISIBLE_DEVICES': ''}


def test_side_folder_holds_transformers_5_17():
    r = subprocess.run([sys.executable, '-c', 'import transformers, huggingface_hub; print(transformers.__version__, huggingface_hub.__version__)'],
                       env=_env(), capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ['5.17.0', '1.33.0'], r.stdout + r.stderr


def test_gpu_check_smoke_under_5_17(tmp_path):
    out = tmp_path/'gpu_check.json'
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'gpu_check.py'), '--cpu-smoke', '--out', str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env={**_env(), 'OUT': str(tmp_path)})
    assert r.returncode == 0, f'gpu_check --cpu-smoke failed under transformers 5.17:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    res = json.loads(out.read_text())
    assert res['env']['transformers'] == '5.17.0'
    bad = {k: v.get('error') or v.get('skipped') for k, v in res.items() if isinstance(v, dict) and ('error' in v or 'skipped' in v)}
    assert not bad, bad
    assert res['agreement']['fp32']['legrad_corr'] > 0.9999 and res['mao_vectors']['finite']


def test_block_notebooks_under_5_17():
    "The notebooks of the code that depends on block internals, their tests included, under transformers 5.17."
    file_re = '^(?:' + '|'.join(NOTEBOOKS) + r')\.ipynb$'
    r = subprocess.run([str(BIN/'nbdev_test'), '--n_workers', '0', '--file_re', file_re], cwd=ROOT/'nbs', env=_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and 'Success' in r.stdout + r.stderr, f'under transformers 5.17:\n{(r.stdout + r.stderr)[-5000:]}'
