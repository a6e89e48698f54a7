"""Cached work that can be trusted (issue: resume, cache keys, hostile files), through the `mao_nb` console script.

Each test reproduces one finding: a folder swapped under the same index, an image added / removed / modified,
a changed chunk size, a changed backbone in the ablation, a run killed with SIGKILL at random points, the
cache housekeeping commands, the user's own COCO queries, and bad input that must give one line and exit 1."""
import contextlib, io, json, os, random, shutil, signal, struct, subprocess, sys, time, zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, BIN

os.environ.setdefault('HF_HUB_OFFLINE', '1')


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    "Photos cut from the tiny generated benchmark (two disjoint sets with the same file names), a tiny local backbone."
    from mao_nb.haystack import load_benchmark
    from mao_nb.backbones import backbone_from_config
    t = tmp_path_factory.mktemp('assets'); test = load_benchmark('tiny', progress=False)['test']
    for name, recs in (('A', test.gallery[:6]), ('B', test.gallery[6:12])):
        (t/name).mkdir()
        for i, r in enumerate(recs): shutil.copy(r.path, t/name/f'img{i:02d}.png')
    Image.fromarray(test.queries[0].load()).save(t/'query.png')
    backbone_from_config('dinov2', image_size=32, patch_size=8).save(t/'bb')
    return t


def cli(*args):
    "Run `mao_nb` in-process: (exit code, stdout, stderr)."
    from mao_nb.cli import main
    with contextlib.redirect_stdout(io.StringIO()) as o, contextlib.redirect_stderr(io.StringIO()) as e: rc = main([str(a) for a in args])
    return rc, o.getvalue(), e.getvalue()


def index_of(assets, folder, idx, *extra):
    rc, out, err = cli('index', folder, '--index', idx, '--backbone', assets/'bb', '--iters', '3', '--chunk', '2', *extra)
    assert rc == 0, err
    return out


def vectors(idx):
    "(image id of each vector, [N, D] vectors) of a saved index."
    from mao_nb.index import GalleryIndex
    g = GalleryIndex.load(idx)
    return list(g.ids), g.index.reconstruct_n(0, g.index.ntotal)


def same_index(a, b, exact=True):
    (ia, va), (ib, vb) = vectors(a), vectors(b)
    assert ia == ib
    if exact: np.testing.assert_array_equal(va, vb)
    else: np.testing.assert_allclose(va, vb, atol=1e-5)


def test_other_folder_under_the_same_index_is_not_reused(assets, tmp_path):
    # A and B hold files of the same names with other pixels: B's index must be B's, not A's cached vectors
    index_of(assets, assets/'A', tmp_path/'idx'); index_of(assets, assets/'B', tmp_path/'idx')
    index_of(assets, assets/'B', tmp_path/'fresh')
    same_index(tmp_path/'idx', tmp_path/'fresh')


def test_index_is_incremental(assets, tmp_path):
    f = tmp_path/'photos'; shutil.copytree(assets/'A', f); (f/'img05.png').unlink()
    assert '5 computed' in index_of(assets, f, tmp_path/'idx')
    shutil.copy(assets/'B'/'img00.png', f/'img09.png')                      # one image added
    out = index_of(assets, f, tmp_path/'idx')
    assert 'index of 6 images (6 vectors' in out and '1 computed, 5 reused' in out, out
    (f/'img01.png').unlink()                                                 # one removed
    assert '0 computed, 5 reused' in index_of(assets, f, tmp_path/'idx')
    shutil.copy(assets/'B'/'img03.png', f/'img02.png')                      # one modified (other pixels, same name)
    assert '1 computed, 4 reused' in index_of(assets, f, tmp_path/'idx')
    index_of(assets, f, tmp_path/'fresh')
    same_index(tmp_path/'idx', tmp_path/'fresh', exact=False)                 # other batches: equal to float rounding


def test_changed_chunk_size_never_mixes_chunks(assets, tmp_path):
    index_of(assets, assets/'A', tmp_path/'idx')
    rc, out, err = cli('index', assets/'A', '--index', tmp_path/'idx', '--backbone', assets/'bb', '--iters', '3', '--chunk', '4')
    assert rc == 0, err
    rc, out, err = cli('index', assets/'A', '--index', tmp_path/'fresh', '--backbone', assets/'bb', '--iters', '3', '--chunk', '4')
    same_index(tmp_path/'idx', tmp_path/'fresh')
    ids, _ = vectors(tmp_path/'idx'); assert ids == sorted(ids) and len(set(ids)) == 6


def test_ablation_cells_follow_the_backbone(tmp_path):
    import torch, copy
    from mao_nb.haystack import load_benchmark
    from mao_nb.backbones import backbone_from_config
    from mao_nb.pipeline import PipelineConfig, run_ablation
    from mao_nb.stage_b import StageBConfig
    test = load_benchmark('tiny', progress=False)['test']; test = type(test)(test.name, test.gallery[:6], test.queries, test.meta)
    bb = backbone_from_config('dinov2', image_size=32, patch_size=8); bb2 = copy.deepcopy(bb)
    with torch.no_grad(): [p.add_(0.05 * torch.randn_like(p)) for p in bb2.model.parameters()]  # as another adapter would
    src = {'oracle': PipelineConfig(detector='oracle', masker='oracle', stage_b=StageBConfig(iters=3))}
    run = lambda b, w: run_ablation(test, {'bb': b}, src, ('global', 'average', 'mao'), w, progress=False)
    run(bb, tmp_path/'shared'); after = run(bb2, tmp_path/'shared'); fresh = run(bb2, tmp_path/'fresh')
    assert [(r.backbone, r.objects, r.method) for r in after] == [(r.backbone, r.objects, r.method) for r in fresh]
    for a, f in zip(after, fresh): np.testing.assert_array_equal(a['per_query_ap'], f['per_query_ap'], err_msg=f.label)


def _run_index(assets, folder, idx, env):
    return subprocess.Popen([str(BIN/'mao_nb'), 'index', str(folder), '--index', str(idx), '--backbone', str(assets/'bb'),
                             '--iters', '40', '--chunk', '1'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _chunks(work):
    return sum(1 for q in work.rglob('*') if q.is_file() and q.suffix in ('.npz', '.json') and q.name != 'manifest.json') if work.exists() else 0


def test_kill_and_resume_is_exact(assets, tmp_path):
    "SIGKILL `mao_nb index` at random points (start-up, and inside the work), several times, then finish: the index equals an uninterrupted run's, bit for bit."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}
    f = tmp_path/'photos'; f.mkdir()
    for d in ('A', 'B'):
        for p in (assets/d).iterdir(): shutil.copy(p, f/f'{d}{p.name}')
    p = _run_index(assets, f, tmp_path/'ref', env); assert p.wait(600) == 0, p.stderr.read()[-2000:]
    total = _chunks(tmp_path/'.ref.work'); assert total == 24            # 12 images: objects and vectors, one chunk each
    work, rng, seen = tmp_path/'.idx.work', random.Random(0), []
    p = _run_index(assets, f, tmp_path/'idx', env); time.sleep(rng.uniform(0.5, 3)); p.send_signal(signal.SIGKILL); p.wait()  # during start-up
    seen.append(_chunks(work))
    for target in sorted(rng.sample(range(2, total - 2, 2), 3)):          # inside the work: after a random number of finished chunks
        target = max(target, _chunks(work) + 1); p = _run_index(assets, f, tmp_path/'idx', env); t0 = time.time()
        while _chunks(work) < target and p.poll() is None and time.time() - t0 < 300: time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))                                   # and somewhere inside the next chunk
        assert p.poll() is None, 'the run ended before it was killed'
        p.send_signal(signal.SIGKILL); p.wait(); seen.append(_chunks(work))
    assert all(0 < n < total for n in seen[1:]) and seen == sorted(seen), seen   # each kill left a partial, growing state
    p = _run_index(assets, f, tmp_path/'idx', env); out = p.communicate(timeout=600)[0].decode()
    assert p.returncode == 0 and 'reused' in out
    same_index(tmp_path/'idx', tmp_path/'ref')
    tmp = [q for q in work.rglob('*') if q.is_file() and q.name.endswith('.tmp')]   # half-written by a killed run: never read
    for q in tmp: os.utime(q, (time.time() - 120,) * 2)                               # old enough not to be a live writer's
    assert cli('cache', 'prune', tmp_path/'idx')[0] == 0
    assert not [q for q in work.rglob('*') if q.is_file() and q.name.endswith('.tmp')]


def test_cache_list_and_prune(assets, tmp_path):
    f = tmp_path/'photos'; shutil.copytree(assets/'A', f)
    index_of(assets, f, tmp_path/'idx'); (f/'img00.png').unlink(); (f/'img01.png').unlink(); index_of(assets, f, tmp_path/'idx')
    rc, out, err = cli('cache', 'list', tmp_path/'idx'); assert rc == 0, err
    assert 'work folders' in out and 'stale' in out and str(tmp_path/'.idx.work') in out
    before = sum(q.stat().st_size for q in (tmp_path/'.idx.work').rglob('*') if q.is_file())
    rc, out, err = cli('cache', 'prune', tmp_path/'idx'); assert rc == 0 and 'freed' in out
    after = sum(q.stat().st_size for q in (tmp_path/'.idx.work').rglob('*') if q.is_file())
    assert after < before
    assert '0 computed' in index_of(assets, f, tmp_path/'idx')               # what is still used was kept
    rc, out, err = cli('cache', 'list', tmp_path/'nope'); assert rc == 1 and 'nope' in err


def test_eval_coco_with_own_queries(assets, tmp_path):
    from coco_fixture import write_coco_fixture as _write_coco_fixture
    fx = _write_coco_fixture(tmp_path/'coco', n_images=4, n_instances=3)
    rc, out, err = cli('eval', '--format', 'coco', '--root', fx['ann_json'], '--image-root', fx['image_root'], '--queries', fx['query_json'],
                       '--backbone', assets/'bb', '--methods', 'global,average', '--objects', 'oracle', '--iters', '2', '--work', tmp_path/'w')
    assert rc == 0, err
    nq = len(json.loads(Path(fx['query_json']).read_text())['images'])
    assert f'4 gallery images, {nq} queries' in out and '| oracle | average |' in out
    rc, out, err = cli('eval', '--format', 'coco', '--root', fx['ann_json'], '--queries', tmp_path/'none.json', '--backbone', assets/'bb')
    assert rc == 1 and 'none.json' in err and 'Traceback' not in err


def test_sam_without_checkpoint_is_refused(assets, tmp_path):
    rc, out, err = cli('index', assets/'A', '--index', tmp_path/'idx', '--backbone', assets/'bb', '--masker', 'sam')
    assert rc == 1 and '--sam-checkpoint' in err and len(err.strip().splitlines()) == 1


def _png_claiming(path, w, h):
    "A tiny PNG whose header claims w x h pixels (a decompression bomb for PIL)."
    Image.new('L', (1, 1)).save(path); b = bytearray(path.read_bytes())
    ihdr = b[12:29]; ihdr[4:12] = struct.pack('>II', w, h)
    b[12:29] = ihdr; b[29:33] = struct.pack('>I', zlib.crc32(bytes(ihdr)) & 0xffffffff); path.write_bytes(bytes(b))


def test_decompression_bomb_query_is_one_line(assets, tmp_path):
    index_of(assets, assets/'A', tmp_path/'idx')
    _png_claiming(tmp_path/'bomb.png', 20000, 20000)
    r = subprocess.run([str(BIN/'mao_nb'), 'search', str(tmp_path/'idx'), str(tmp_path/'bomb.png'), '--backbone', str(assets/'bb')],
                       capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'}, timeout=600)
    assert r.returncode == 1 and 'Traceback' not in r.stderr and 'bomb.png' in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1
