"Block-wise full-gallery evaluation (`mao_nb.metrics.evaluate_index`): exact against `evaluate_rankings`, and its benchmark runs."
import json, subprocess, sys, warnings

import numpy as np
import pytest

from conftest import ROOT

pytest.importorskip('faiss')
from mao_nb.index import GalleryIndex, random_unit_vectors
from mao_nb.metrics import evaluate_index, evaluate_rankings


def _same(a: dict, b: dict, eps: float=1e-12):
    assert set(a) == set(b)
    assert (a['n_queries'], a['n_excluded']) == (b['n_queries'], b['n_excluded'])
    pa, pb = a['per_query_ap'], b['per_query_ap']
    assert pa.shape == pb.shape and (np.isnan(pa) == np.isnan(pb)).all()
    ok = ~np.isnan(pa); assert np.allclose(pa[ok], pb[ok], rtol=0, atol=eps)
    for k in a:
        if k not in ('per_query_ap', 'n_queries', 'n_excluded'): assert abs(a[k] - b[k]) <= eps, (k, a[k], b[k])


@pytest.mark.parametrize('vpi_max', [1, 5])  # one vector per image, and a multi-vector index (1..4 vectors per image, shuffled)
@pytest.mark.parametrize('block', [1, 13, 1000])
def test_evaluate_index_equals_evaluate_rankings(vpi_max, block):
    rng = np.random.default_rng(vpi_max * 100 + block)
    G, Q, D = 300, 41, 24
    n = rng.integers(1, vpi_max + 1, G) if vpi_max > 1 else np.ones(G, int)
    owner = rng.permutation(np.repeat(np.arange(G), n))  # an image's vectors are not contiguous
    vecs = random_unit_vectors(len(owner), D, seed=block)
    index = GalleryIndex(D, use_gpu=False).add(vecs, [f'g{o}' for o in owner])
    assert index.multi_vector == (vpi_max > 1)
    queries = random_unit_vectors(Q, D, seed=block + 1)
    ids = index.image_ids
    relevant = [set(rng.choice(ids, int(rng.integers(1, 40)), replace=False).tolist()) for _ in range(Q)]
    relevant[3] = set()                       # a query without a relevant image: NaN AP, excluded
    relevant[5] = {ids[0], 'not-in-gallery'}  # a relevant id the gallery lacks: counts as never retrieved
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for mode in ('any', 'fraction'):
            ks = (1, 5, 10, 100)
            new = evaluate_index(index, queries, relevant, block=block, ks=ks, recall_mode=mode)
            old = evaluate_rankings(index.search(queries, k=G)[1], relevant, ks=ks, recall_mode=mode)
            _same(new, old)
    assert np.isnan(new['per_query_ap'][3]) and new['n_excluded'] == 1 and new['n_queries'] == Q - 1


def test_evaluate_index_ties_in_gallery_order():
    index = GalleryIndex(2, use_gpu=False).add(np.array([[0, 1.], [.6, .8], [.6, .8], [1, 0]]), ['d', 'b', 'c', 'a'])
    q = np.array([[.6, .8]])  # b and c tie at 1.0, ahead of d (0.8) and a (0.6)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert evaluate_index(index, q, [{'b'}])['per_query_ap'].tolist() == [1.0]
        assert evaluate_index(index, q, [{'c'}])['per_query_ap'].tolist() == [0.5]
        assert evaluate_index(index, q, [{'a', 'c'}])['per_query_ap'].tolist() == [(1/2 + 2/4) / 2]


def test_bench_eval_memory_small():
    cmd = [sys.executable, str(ROOT/'benchmarks'/'bench_eval_memory.py'), '--gallery', '5000', '--queries', '500', '--dim', '64', '--json']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for k in ('path', 'gallery', 'queries', 'dim', 'block', 'vectors', 'mAP', 'R@1', 'R@5', 'R@10', 'n_queries', 'n_excluded',
              'seconds', 'setup_seconds', 'peak_rss_gib', 'rss_before_eval_gib', 'eval_peak_rss_gib', 'eval_traced_peak_gib'):
        assert k in out, k
    assert (out['path'], out['gallery'], out['queries'], out['dim'], out['n_queries']) == ('new', 5000, 500, 64, 500)
    assert 0 <= out['mAP'] <= 1 and out['peak_rss_gib'] > 0
