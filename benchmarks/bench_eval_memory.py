"""Peak memory and time of the full-gallery evaluation `mao_nb.metrics.evaluate_index` (CPU).

Synthetic data: `--gallery` images with `--vectors-per-image` L2-normalised float32 vectors each (`--dim`-d,
uniformly random), and `--queries` queries, each built from 1..`--relevant` random gallery images (the
normalised sum of one vector of each, plus noise): those images are its relevant set. A flat `GalleryIndex`
holds the gallery; `evaluate_index` scores the queries `--block` at a time, so its memory is
O(block x vectors), never [queries, gallery].

`--path old` measures what `pipeline.evaluate_method` did before: `index.search(q, k=len(gallery))` and
`evaluate_rankings` on the id lists ([Q, G] arrays and Q lists of G ids). `--compare` runs both paths at a
smaller size (`--compare-gallery` x `--compare-queries`), each in a fresh process (peak RSS is per process)
started before the main run and without tracemalloc, and reports the ratio of their peaks and whether their
numbers agree. At the default 20k x 2k the old path peaks near 2.7 GiB (about 6.6 GiB with tracemalloc on).

Reported: `peak_rss_gib` (resource.getrusage ru_maxrss of this process, data and index included),
`rss_before_eval_gib` (RSS once data and index are built), `eval_peak_rss_gib` (highest RSS sampled every
10 ms during the evaluation, psutil or /proc), `eval_traced_peak_gib` (tracemalloc peak of the
evaluation alone: numpy buffers, not FAISS's C++ memory; omitted with --no-tracemalloc), `seconds` (the
evaluation), `setup_seconds` (data + index). Printed as a readable line and as one JSON line (with --json:
only the JSON line on stdout, the readable line on stderr).

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_eval_memory.py                  # 100k images x 10k queries x 768-d
    .venv/bin/python benchmarks/bench_eval_memory.py --compare        # + old vs new at 20k x 2k
    .venv/bin/python benchmarks/bench_eval_memory.py --gallery 5000 --queries 500 --json
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, threading, time, tracemalloc, warnings

import numpy as np

GIB = 2 ** 30


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--gallery', type=int, default=100_000, help='gallery images')
    p.add_argument('--queries', type=int, default=10_000, help='queries')
    p.add_argument('--dim', type=int, default=768, help='vector dimension')
    p.add_argument('--block', type=int, default=256, help='queries scored at a time by evaluate_index')
    p.add_argument('--vectors-per-image', type=int, default=1, help='vectors per gallery image (>1: a multi-vector index)')
    p.add_argument('--relevant', type=int, default=4, help='each query has 1..this many relevant images')
    p.add_argument('--noise', type=float, default=3.0, help='query noise norm relative to the relevant part')
    p.add_argument('--path', choices=['new', 'old'], default='new', help="'new': evaluate_index; 'old': search k=G + evaluate_rankings")
    p.add_argument('--compare', action='store_true', help='also run old and new at the compare size, each in a fresh process')
    p.add_argument('--compare-gallery', type=int, default=20_000, help='gallery images of the --compare runs')
    p.add_argument('--compare-queries', type=int, default=2_000, help='queries of the --compare runs')
    p.add_argument('--no-tracemalloc', action='store_true', help='skip the tracemalloc measurement (it slows Python allocations a little)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', action='store_true', help='print only the JSON line on stdout (the readable line goes to stderr)')
    return p.parse_args(argv)


def rss_gib() -> float:
    "Current resident set size of this process."
    try:
        import psutil
        return psutil.Process().memory_info().rss / GIB
    except ImportError:
        with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / GIB


def peak_rss_gib() -> float:
    "Peak resident set size of this process so far (ru_maxrss is in KiB on Linux, bytes on macOS)."
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (GIB if sys.platform == 'darwin' else 2 ** 20)


class RSSSampler:
    "Highest RSS seen by a background thread polling every `every` seconds (the evaluation's own peak, setup excluded)."
    def __init__(self, every: float=0.01): self.every, self.peak, self._stop = every, rss_gib(), threading.Event()
    def _run(self):
        while not self._stop.wait(self.every): self.peak = max(self.peak, rss_gib())
    def __enter__(self): self._t = threading.Thread(target=self._run, daemon=True); self._t.start(); return self
    def __exit__(self, *a): self._stop.set(); self._t.join(); self.peak = max(self.peak, rss_gib())


def make_data(G: int, Q: int, dim: int, vpi: int, max_rel: int, noise: float, seed: int):
    "Gallery vectors with their image ids, queries and their relevant image ids."
    from mao_nb.index import random_unit_vectors
    gallery = random_unit_vectors(G * vpi, dim, seed=seed)  # vector v belongs to image v // vpi
    ids = [f'img{i}' for i in range(G)]; owner = np.repeat(np.arange(G), vpi)
    rng = np.random.default_rng(seed + 1); queries = np.empty((Q, dim), np.float32); relevant = []
    for i in range(0, Q, 4096):  # in chunks: bounded temporaries
        m = min(4096, Q - i)
        for j in range(m):
            rel = rng.choice(G, int(rng.integers(1, max_rel + 1)), replace=False)
            relevant.append({ids[r] for r in rel})
            queries[i + j] = gallery[rel * vpi + rng.integers(0, vpi, len(rel))].sum(0)
        c = queries[i:i+m]; c /= np.linalg.norm(c, axis=1, keepdims=True)
        c += (noise / np.sqrt(dim)) * rng.standard_normal(c.shape, dtype=np.float32)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    return gallery, [ids[o] for o in owner], queries, relevant


def run(args) -> dict:
    from mao_nb.index import GalleryIndex
    from mao_nb.metrics import evaluate_index, evaluate_rankings
    t0 = time.perf_counter()
    gallery, owner_ids, queries, relevant = make_data(args.gallery, args.queries, args.dim, args.vectors_per_image,
                                                      args.relevant, args.noise, args.seed)
    index = GalleryIndex(args.dim, 'flat', use_gpu=False).add(gallery, owner_ids, progress=False)
    del gallery, owner_ids  # the index holds its own copy
    setup = time.perf_counter() - t0; rss0 = rss_gib()
    if not args.no_tracemalloc: tracemalloc.start()
    t1 = time.perf_counter()
    with warnings.catch_warnings(), RSSSampler() as sampler:
        warnings.simplefilter('ignore')
        if args.path == 'new': m = evaluate_index(index, queries, relevant, block=args.block)
        else: m = evaluate_rankings(index.search(queries, k=index.n_images)[1], relevant)
    secs = time.perf_counter() - t1
    traced = tracemalloc.get_traced_memory()[1] / GIB if tracemalloc.is_tracing() else None
    if tracemalloc.is_tracing(): tracemalloc.stop()
    out = dict(bench='eval_memory', path=args.path, function='mao_nb.metrics.evaluate_index' if args.path == 'new' else
               'GalleryIndex.search(k=G) + mao_nb.metrics.evaluate_rankings',
               gallery=args.gallery, queries=args.queries, dim=args.dim, block=args.block if args.path == 'new' else None,
               vectors=index.n_vectors, vectors_per_image=args.vectors_per_image,
               **{k: m[k] for k in ('mAP', 'R@1', 'R@5', 'R@10', 'n_queries', 'n_excluded')},
               seconds=round(secs, 3), setup_seconds=round(setup, 3),
               peak_rss_gib=round(peak_rss_gib(), 4), rss_before_eval_gib=round(rss0, 4), eval_peak_rss_gib=round(sampler.peak, 4),
               eval_traced_peak_gib=None if traced is None else round(traced, 4),
               dense_qxg_float32_gib=round(args.queries * args.gallery * 4 / GIB, 4),
               cpus=os.cpu_count(), numpy=np.__version__)
    return out


def child(args, path: str) -> dict:
    "One measurement at the compare size, in a fresh process."
    cmd = [sys.executable, os.path.abspath(__file__), '--json', '--path', path, '--gallery', str(args.compare_gallery),
           '--queries', str(args.compare_queries), '--dim', str(args.dim), '--block', str(args.block),
           '--vectors-per-image', str(args.vectors_per_image), '--relevant', str(args.relevant),
           '--noise', str(args.noise), '--seed', str(args.seed), '--no-tracemalloc']  # tracemalloc would inflate the old path's millions of objects
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def readable(r: dict) -> str:
    t = '' if r['eval_traced_peak_gib'] is None else f", traced eval peak {r['eval_traced_peak_gib']:.3f} GiB"
    s = (f"{r['path']}: {r['queries']} queries x {r['gallery']} images ({r['vectors']} vectors, {r['dim']}-d"
         f"{', block ' + str(r['block']) if r['block'] else ''}): mAP {r['mAP']:.4f}, R@1 {r['R@1']:.4f} | "
         f"eval {r['seconds']:.1f} s (setup {r['setup_seconds']:.1f} s) | peak RSS {r['peak_rss_gib']:.3f} GiB "
         f"(before eval {r['rss_before_eval_gib']:.3f}, sampled during eval {r['eval_peak_rss_gib']:.3f}{t}; a dense [Q, G] float32 matrix would be {r['dense_qxg_float32_gib']:.2f} GiB)")
    if 'compare' in r:
        c = r['compare']
        s += (f"\ncompare at {c['queries']} x {c['gallery']}: old peak {c['old']['peak_rss_gib']:.3f} GiB in {c['old']['seconds']:.1f} s, "
              f"new peak {c['new']['peak_rss_gib']:.3f} GiB in {c['new']['seconds']:.1f} s: ratio {c['peak_rss_ratio_old_over_new']:.2f}x "
              f"(sampled during eval: {c['old']['eval_peak_rss_gib']:.3f} vs {c['new']['eval_peak_rss_gib']:.3f} GiB, {c['eval_peak_rss_ratio_old_over_new']:.1f}x); "
              f"growth over setup: old {c['old_eval_growth_gib']:.3f} GiB, new {c['new_eval_growth_gib']:.3f} GiB; "
              f"|mAP difference| {c['abs_map_difference']:.2e}")
    return s


def main(argv=None):
    args = parse_args(argv)
    # the compare children run first, while this process is small: on Linux a child's ru_maxrss starts from the
    # RSS of the process it was forked from, so children forked after the big run would report its peak
    if args.compare: old, new = child(args, 'old'), child(args, 'new')
    r = run(args)
    if args.compare:
        grow = lambda x: x['eval_peak_rss_gib'] - x['rss_before_eval_gib']
        r['compare'] = dict(gallery=args.compare_gallery, queries=args.compare_queries, old=old, new=new,
                            peak_rss_ratio_old_over_new=round(old['peak_rss_gib'] / new['peak_rss_gib'], 3),
                            eval_peak_rss_ratio_old_over_new=round(old['eval_peak_rss_gib'] / new['eval_peak_rss_gib'], 3),
                            old_eval_growth_gib=round(grow(old), 4), new_eval_growth_gib=round(grow(new), 4),
                            abs_map_difference=abs(old['mAP'] - new['mAP']))
    print(readable(r), file=sys.stderr if args.json else sys.stdout, flush=True)
    print(json.dumps(r), flush=True)
    return r


if __name__ == '__main__':
    main()
