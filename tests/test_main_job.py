"""The README's main job through the installed console script (a fresh process, as a user runs it):
`mao_nb demo` on the tiny preset (the default preset is what `make demo` runs; it takes minutes),
and `mao_nb --help`."""
import os, subprocess
from conftest import ROOT, BIN


def _run(args, tmp_path, timeout=1800):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}
    return subprocess.run([str(BIN/'mao_nb'), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_command(tmp_path):
    r = _run(['--help'], tmp_path)
    assert r.returncode == 0
    for cmd in ('demo', 'index', 'search', 'eval', 'pretrain', 'stage-a', 'docs', 'env'): assert cmd in r.stdout


def test_demo_tiny_writes_report(tmp_path):
    out = tmp_path/'report.html'
    r = _run(['demo', '--preset', 'tiny', '--iters', '10', '--objects', 'oracle,offline', '--methods', 'all', '--work', str(tmp_path/'work'), '--out', str(out)], tmp_path)  # the full ablation
    assert r.returncode == 0, r.stderr[-3000:]
    for row in ('zero-shot | - | global', 'stage A | oracle | mao', 'stage A | offline | per_crop'): assert row in r.stdout
    page = out.read_text()
    assert page.count('Plotly.newPlot') >= 4 and 'example query' in page


def test_bad_input_is_one_clear_line(tmp_path):
    r = _run(['index', str(tmp_path/'no-such-folder'), '--index', str(tmp_path/'idx')], tmp_path)
    assert r.returncode == 1 and 'no-such-folder' in r.stderr and 'Traceback' not in r.stderr
