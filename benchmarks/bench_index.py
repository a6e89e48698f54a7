"""Benchmark of the gallery index (`mao_nb.index.GalleryIndex`) on the CPU.

For each data kind (uniformly random unit vectors, and clustered ones from a mixture of Gaussians)
and each gallery size, it measures:
- flat (exact IndexFlatIP): build time, search throughput (one batch of `--queries` queries, top `--k`),
  memory per image (4 * dim bytes);
- IVF-PQ (IndexIVFPQ, inner product): training time (on a sample of `--train-size` vectors), add time,
  serialized bytes per image, and for each `--nprobe`: throughput and recall@k against the flat index
  (the fraction of the exact top-k images that IVF-PQ also returns);
- IVF-PQ re-ranked exactly (`ivfpq_rerank`, FAISS IndexRefineFlat) with the parameters `mao_nb.index.choose_index`
  picks for that size: the same figures. The row of the kind mao_nb would build at that size has `default: true`;
- auto: what `GalleryIndex.build(kind='auto')` makes, after its recall self-check (`--target-recall`): the recall it
  measured on its own vectors (`self_check_recall`) beside the recall measured on the separate queries, and whether it
  fell back to the flat index.

`--json` prints one JSON line per row (keys kind, n, recall_at_10, qps, bytes_per_vector, default, and the rest).

Random vectors are the worst case for IVF-PQ (in 768-d all similarities concentrate near 0, the true
neighbours barely stand out); the clustered data is a rough stand-in for real embeddings.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_index.py --sizes 100000 1000000 --dim 768 --out benchmarks/results/index.json
"""
from __future__ import annotations
import argparse, gc, json, os, platform, sys, time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--sizes', type=int, nargs='+', default=[100_000, 1_000_000], help='gallery sizes (vectors)')
    p.add_argument('--dim', type=int, default=768, help='vector dimension')
    p.add_argument('--queries', type=int, default=1000, help='queries per search batch')
    p.add_argument('--k', type=int, default=10, help='results per query')
    p.add_argument('--data', nargs='+', default=['random', 'clustered'], choices=['random', 'clustered', 'embedded'],
                   help="data kinds; embedded: the embedded benchmark's test images through the shipped backbone (average descriptors), tiled up to size with small noise")
    p.add_argument('--target-recall', type=float, default=0.95, help="the 'auto' row: the target of GalleryIndex.build's recall self-check")
    p.add_argument('--points-per-cluster', type=int, default=50, help='clustered data: gallery vectors per mixture component')
    p.add_argument('--noise', type=float, default=0.6, help='clustered data: noise norm relative to the unit centre')
    p.add_argument('--nlist', type=int, nargs='+', default=[1024], help='IVF lists; one value, or one per size')
    p.add_argument('--m', type=int, default=64, help='PQ sub-quantisers (bytes per code with 8 bits)')
    p.add_argument('--nbits', type=int, default=8, help='bits per PQ sub-quantiser')
    p.add_argument('--nprobe', type=int, nargs='+', default=[16, 64], help='IVF lists probed per query')
    p.add_argument('--train-size', type=int, default=50_000, help='IVF-PQ training sample')
    p.add_argument('--threads', type=int, default=1, help='FAISS OpenMP threads (1 is fastest on a shared 2-core machine)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default='benchmarks/results/index.json', help='JSON results (written atomically)')
    p.add_argument('--json', action='store_true', help='print one JSON line per row (as rows finish)')
    p.add_argument('--kinds', nargs='+', default=['ivfpq', 'ivfpq_rerank', 'auto'], choices=['ivfpq', 'ivfpq_rerank', 'auto'],
                   help="approximate kinds to measure (flat always runs); auto: what GalleryIndex.build(kind='auto') makes, its recall self-checked")
    return p.parse_args(argv)


def log(*a):
    print(f'[{time.strftime("%H:%M:%S")}]', *a, file=sys.stderr, flush=True)  # stdout is for the table (or --json lines)


def embedded_vectors() -> np.ndarray:
    "Average descriptors of the embedded benchmark's test gallery, ground-truth objects, shipped backbone: [300, 96]."
    from mao_nb.haystack import load_benchmark
    from mao_nb.shipped import default_backbone
    from mao_nb.descriptors import average_vectors
    test = load_benchmark('default', progress=False)['test']
    return average_vectors(default_backbone(), test.gallery).float().numpy()

def make_data(kind: str, n: int, dim: int, n_queries: int, args, seed: int):
    from mao_nb.index import random_unit_vectors, clustered_unit_vectors, check_vectors
    if kind == 'embedded':  # real descriptors, tiled: each a near-duplicate cluster (the hard case for IVF: many equal neighbours)
        base = embedded_vectors(); rng = np.random.default_rng(seed)
        def tile(m): return check_vectors(base[rng.integers(0, len(base), m)] + 0.05 * rng.standard_normal((m, base.shape[1])).astype(np.float32) / np.sqrt(base.shape[1]), base.shape[1])
        return tile(n), tile(n_queries)
    if kind == 'random':
        return random_unit_vectors(n, dim, seed=seed), random_unit_vectors(n_queries, dim, seed=seed + 1)
    g, centres = clustered_unit_vectors(n, dim, n_clusters=max(1, n // args.points_per_cluster), noise=args.noise, seed=seed)
    q, _ = clustered_unit_vectors(n_queries, dim, noise=args.noise, centres=centres, seed=seed + 1)
    return g, q


def timed(f):
    t = time.perf_counter(); r = f(); return r, time.perf_counter() - t


def bench_one(kind: str, n: int, nlist: int, args) -> list[dict]:
    import faiss
    from mao_nb.index import GalleryIndex, recall_at_k_vs_flat
    rows = []
    (g, q), t_gen = timed(lambda: make_data(kind, n, args.dim, args.queries, args, args.seed))
    ids = [str(i) for i in range(n)]; dim = g.shape[1]
    log(f'{kind} n={n:,} dim={dim}: data in {t_gen:.1f}s')
    # exact
    flat, t_build = timed(lambda: GalleryIndex.build(g, ids, kind='flat', use_gpu=False))
    (_, truth), t_search = timed(lambda: flat.search(q, args.k))
    rows.append(dict(data=kind, n=n, dim=dim, index='flat', params={}, build_s=round(t_build, 2), train_s=0.0,
                     add_s=round(t_build, 2), search_s=round(t_search, 3), qps=round(args.queries / t_search, 1),
                     recall_at_k=1.0, bytes_per_vector=4 * dim))
    flat_qps = args.queries / t_search
    log(f'  flat: build {t_build:.1f}s, search {args.queries} queries {t_search:.2f}s ({args.queries / t_search:,.0f} q/s)')
    del flat; gc.collect()
    # IVF-PQ
    m_pq = args.m if dim % args.m == 0 else next(m for m in (64, 48, 32, 24, 16, 12, 8, 4, 2, 1) if dim % m == 0)
    if 'ivfpq' in args.kinds:
        pq = GalleryIndex(dim, 'ivfpq', nlist=nlist, m=m_pq, nbits=args.nbits, nprobe=args.nprobe[0], use_gpu=False)
        _, t_train = timed(lambda: pq.train(g, max_n=args.train_size, seed=args.seed))
        _, t_add = timed(lambda: pq.add(g, ids))
        nbytes = faiss.serialize_index(pq.index).nbytes
        log(f'  ivfpq nlist={nlist} m={m_pq}: train {t_train:.1f}s on {min(n, args.train_size):,}, add {t_add:.1f}s, {nbytes / n:.1f} bytes/vector')
        for nprobe in args.nprobe:
            pq.nprobe = nprobe
            pq.search(q[:10], args.k)  # warm-up
            t_s = min(timed(lambda: pq.search(q, args.k))[1] for _ in range(2))
            rec = recall_at_k_vs_flat(pq, truth, q, args.k)
            rows.append(dict(data=kind, n=n, dim=dim, index='ivfpq', params=dict(nlist=nlist, m=m_pq, nbits=args.nbits, nprobe=nprobe),
                             build_s=round(t_train + t_add, 2), train_s=round(t_train, 2), add_s=round(t_add, 2), train_n=min(n, args.train_size),
                             search_s=round(t_s, 3), qps=round(args.queries / t_s, 1), recall_at_k=round(rec, 4),
                             bytes_per_vector=round(nbytes / n, 1)))
            log(f'    nprobe={nprobe}: search {t_s:.3f}s ({args.queries / t_s:,.0f} q/s), recall@{args.k} vs flat {rec:.3f}')
        del pq; gc.collect()
    # IVF-PQ re-ranked exactly, as mao_nb builds it for this size
    from mao_nb.index import choose_index
    c = choose_index(n, dim)
    if c['kind'] == 'ivfpq_rerank' and 'ivfpq_rerank' in args.kinds:
        p = {k: v for k, v in c.items() if k != 'kind'}
        rr = GalleryIndex(dim, 'ivfpq_rerank', use_gpu=False, **p)
        _, t_train = timed(lambda: rr.train(g, max_n=100_000, seed=args.seed))  # the sample GalleryIndex.build trains on
        _, t_add = timed(lambda: rr.add(g, ids))
        nbytes = faiss.serialize_index(rr.index).nbytes
        log(f'  ivfpq_rerank {p}: train {t_train:.1f}s, add {t_add:.1f}s, {nbytes / n:.1f} bytes/vector')
        for nprobe in sorted({p['nprobe'], *args.nprobe}):
            rr.nprobe = nprobe; rr.search(q[:10], args.k)
            t_s = min(timed(lambda: rr.search(q, args.k))[1] for _ in range(2))
            rec = recall_at_k_vs_flat(rr, truth, q, args.k)
            rows.append(dict(data=kind, n=n, dim=dim, index='ivfpq_rerank', params={**p, 'nprobe': nprobe},
                             build_s=round(t_train + t_add, 2), train_s=round(t_train, 2), add_s=round(t_add, 2), train_n=min(n, 100_000),
                             search_s=round(t_s, 3), qps=round(args.queries / t_s, 1), recall_at_k=round(rec, 4),
                             bytes_per_vector=round(nbytes / n, 1), speedup_vs_flat=round(args.queries / t_s / flat_qps, 2)))
            log(f'    nprobe={nprobe}: search {t_s:.3f}s ({args.queries / t_s:,.0f} q/s, {args.queries / t_s / flat_qps:.1f}x flat), recall@{args.k} vs flat {rec:.3f}')
        del rr
    # what GalleryIndex.build(kind='auto') makes: parameters by size, then raised until its own recall check meets the target
    if 'auto' in args.kinds and c['kind'] != 'flat':
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            au, t_b = timed(lambda: GalleryIndex.build(g, ids, kind='auto', target_recall=args.target_recall, use_gpu=False))
        rc = au.meta['recall_check']; au.search(q[:10], args.k)
        t_s = min(timed(lambda: au.search(q, args.k))[1] for _ in range(2))
        rec = recall_at_k_vs_flat(au, truth, q, args.k)
        fell = [str(w.message) for w in caught if 'using the exact flat index' in str(w.message)]
        rows.append(dict(data=kind, n=n, dim=dim, index='auto', params={k: rc[k] for k in ('kind', 'nprobe', 'k_factor')},
                         build_s=round(t_b, 2), train_s=0.0, add_s=0.0, search_s=round(t_s, 3), qps=round(args.queries / t_s, 1),
                         recall_at_k=round(rec, 4), self_check_recall=rc['recall_at_10'], target=rc['target'], fell_back_to_flat=bool(fell),
                         bytes_per_vector=round(faiss.serialize_index(au.index).nbytes / n, 1), speedup_vs_flat=round(args.queries / t_s / flat_qps, 2)))
        log(f"  auto: {rc}; separate queries recall@{args.k} {rec:.3f}; {args.queries / t_s / flat_qps:.1f}x flat" + (f'; {fell[0]}' if fell else ''))
        del au
    for r in rows:  # the kind mao_nb would build at this size
        r['kind'] = r['index']; r[f'recall_at_{args.k}'] = r['recall_at_k']
        r['default'] = r['index'] == c['kind'] and all(r['params'].get(k) == v for k, v in c.items() if k != 'kind')
    del g, q; gc.collect()
    return rows


def table(rows: list[dict], k: int) -> str:
    head = ['data', 'n', 'index', 'nlist', 'm', 'nprobe', 'k_factor', 'build s', 'train s', 'add s', 'q/s', f'recall@{k}', 'self-check', 'bytes/vec']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        p = r['params']
        name = r['index'] + (' (default)' if r.get('default') else '') + (f" -> {p['kind']}" if r['index'] == 'auto' else '')
        vals = [r['data'], f"{r['n']:,}", name, p.get('nlist', ''), p.get('m', ''), p.get('nprobe', ''), p.get('k_factor', ''), f"{r['build_s']:.1f}",
                f"{r['train_s']:.1f}", f"{r['add_s']:.1f}", f"{r['qps']:,.0f}", f"{r['recall_at_k']:.3f}",
                f"{r['self_check_recall']:.3f}" if 'self_check_recall' in r else '', f"{r['bytes_per_vector']:,.0f}"]
        lines.append('| ' + ' | '.join(str(v) for v in vals) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    import faiss
    from mao_nb.core import write_json
    faiss.omp_set_num_threads(args.threads)
    if len(args.nlist) not in (1, len(args.sizes)): sys.exit(f'--nlist takes one value or one per size ({len(args.sizes)}), got {args.nlist}')
    nlists = args.nlist * len(args.sizes) if len(args.nlist) == 1 else args.nlist
    env = dict(python=platform.python_version(), faiss=faiss.__version__, numpy=np.__version__, cpu_count=os.cpu_count(),
               omp_threads=faiss.omp_get_max_threads(), machine=platform.machine(), load_avg_start=[round(v, 2) for v in os.getloadavg()])
    log(f'env: {env}')
    rows, t0 = [], time.perf_counter()
    for n, nlist in zip(args.sizes, nlists):
        for kind in args.data:
            new = bench_one(kind, n, nlist, args); rows += new
            if args.json:
                for r in new: print(json.dumps(r), flush=True)
            out = dict(args=vars(args), env=env, rows=rows, total_s=round(time.perf_counter() - t0, 1))
            write_json(args.out, out)  # atomic; rewritten after each size so that a long run leaves partial results
    env['load_avg_end'] = [round(v, 2) for v in os.getloadavg()]
    write_json(args.out, dict(args=vars(args), env=env, rows=rows, total_s=round(time.perf_counter() - t0, 1)))
    if not args.json: print(table(rows, args.k))
    log(f'total {time.perf_counter() - t0:.0f}s; results in {args.out}')


if __name__ == '__main__':
    main()
