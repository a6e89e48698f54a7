"""The README's main job through the installed console script (a fresh process, as a user runs it):
`mao_nb demo` on the tiny preset (the default preset is what `make demo` runs; it takes minutes),
`mao_nb --help`, and `mao_nb index --engine ray` against the local engine."""
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


def test_index_with_ray_equals_local(tmp_path):
    "`mao_nb index --engine ray` (a local 2-worker Ray cluster) saves the index that the local engine saves, image by image."
    import shutil, numpy as np
    from mao_nb.backbones import backbone_from_config
    from mao_nb.haystack import load_benchmark
    from mao_nb.index import GalleryIndex, random_unit_vectors
    photos = tmp_path/'photos'; photos.mkdir()
    for r in load_benchmark('tiny', progress=False)['test'].gallery[:6]: shutil.copy(r.path, photos/r.path.name)
    backbone_from_config('dinov2', image_size=32, patch_size=8, attn_implementation='eager').save(tmp_path/'bb')
    common = ['--backbone', str(tmp_path/'bb'), '--iters', '3', '--chunk', '2']
    loc = _run(['index', str(photos), '--index', str(tmp_path/'local'), *common], tmp_path)
    ray = _run(['index', str(photos), '--index', str(tmp_path/'ray'), '--engine', 'ray', '--workers', '2', *common], tmp_path)
    assert loc.returncode == 0 and ray.returncode == 0, (loc.stderr[-2000:], ray.stderr[-2000:])
    assert 'Ray workers' in ray.stdout, ray.stdout
    a, b = GalleryIndex.load(tmp_path/'local'), GalleryIndex.load(tmp_path/'ray')
    assert a.image_ids == b.image_ids and a.kind == b.kind == 'flat'
    q = random_unit_vectors(5, a.dim, seed=3)
    (_, sa), (_, sb) = next(a.iter_image_scores(q)), next(b.iter_image_scores(q))
    np.testing.assert_allclose(sa, sb, atol=1e-4)  # every image's score: the same vectors
