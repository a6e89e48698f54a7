"""benchmarks/gpu_check.py: its --cpu-smoke run goes through every section's code path at tiny sizes on the CPU,
so a GPU session spends its few minutes on numbers, not on a crash in section five."""
import json, os, subprocess, sys
from conftest import ROOT

SECTIONS = ('env', 'stage_b', 'agreement', 'mao_vectors', 'owlv2', 'sam', 'stage_a_memory')


def _numbers(d) -> list:
    "Every number in a nested dict (booleans excluded)."
    if isinstance(d, dict): return [x for v in d.values() for x in _numbers(v)]
    return [d] if isinstance(d, (int, float)) and not isinstance(d, bool) else []


def test_gpu_check_cpu_smoke(tmp_path):
    out = tmp_path/'gpu_check.json'
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'gpu_check.py'), '--cpu-smoke', '--out', str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1', 'CUDA_VISIBLE_DEVICES': '', 'OUT': str(tmp_path)})
    assert r.returncode == 0, f'gpu_check --cpu-smoke failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}'
    res = json.loads(out.read_text())
    assert res['mode'] == 'cpu-smoke'
    for s in SECTIONS:
        assert s in res, f'section {s} missing from {sorted(res)}'
        assert 'error' not in res[s] and 'skipped' not in res[s], f'{s}: {res[s]}'
        assert len(_numbers({k: v for k, v in res[s].items() if k != 'seconds'})) > 0 or s == 'env', f'{s} holds no numbers: {res[s]}'
    assert res['env']['missing'] == [] and res['env']['torch']
    for model in ('vit_tiny', 'siglip_tiny'):
        for case in ('N4_fp32', 'N4_tf32', 'N8_bf16', 'N8_fp16'):  # every precision runs, its warm-up included
            c = res['stage_b'][model][case]
            assert c['finite'] and c['ms_per_object_80_iters'] > 0 and c['ms_per_object_per_iter'] >= 0, (model, case, c)
            assert {'ms_per_object_setup', 'ms_per_object_encode', 'batch'} <= set(c), c  # set-up timed apart from the iterations
        full = res['stage_b'][model]['N4_fp32_4iters']  # one case timed as it runs, every iteration (80 on a GPU)
        assert full['finite'] and full['ms_per_object'] > 0 and full['iters'] == 4, full
        assert not [k for k in res['stage_b'][model] if k.startswith('warmup_')], res['stage_b'][model]  # no warm-up failed
    a = res['agreement']
    assert a['fp32']['legrad_corr'] > 0.9999 and a['bf16']['legrad_corr'] > 0.99 and a['bf16']['embed_min_cos'] > 0.99
    assert res['mao_vectors']['finite'] and res['mao_vectors']['max_norm_error'] < 1e-4
    m = res['stage_a_memory']
    assert m['checkpointing']['mib_per_crop'] < m['plain']['mib_per_crop']  # checkpointing keeps less for the backward pass

