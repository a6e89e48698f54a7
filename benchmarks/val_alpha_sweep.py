"""Stage B's regulariser weight alpha, chosen on the VALIDATION split (never the test split).

For the shipped backbone, zero-shot and with its Stage A adapter, MaO's mAP on ground-truth objects of the first
N validation scenes for each alpha, against the global and multi-object average descriptors of the same objects.
Cached and resumable under data/cache/runs/val-alpha-sweep; writes a JSON summary and a plotly HTML figure.

    python benchmarks/val_alpha_sweep.py [--scenes 60] [--alphas 0.03 0.1 0.3 1 3] [--out benchmarks/results/val_alpha_sweep.json]
"""
import argparse, json
from pathlib import Path
from mao_nb.core import cache_dir, write_json
from mao_nb.haystack import validation_split
from mao_nb.shipped import default_backbone
from mao_nb.stage_a import load_adapter
from mao_nb.cli import default_adapter
from mao_nb.findings import stage_b_sweep, plot_stage_b_sweep


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=60); ap.add_argument('--alphas', type=float, nargs='+', default=[0.03, 0.1, 0.3, 1.0, 3.0])
    ap.add_argument('--out', default='benchmarks/results/val_alpha_sweep.json')
    a = ap.parse_args()
    val = validation_split('default', progress=False)
    val = type(val)(val.name, val.gallery[:a.scenes], val.queries, val.meta)
    zs = default_backbone('eager'); ft = load_adapter(zs, default_adapter())
    work = cache_dir('runs', 'val-alpha-sweep'); summary = {}
    for name, bb in (('zero-shot', zs), ('stage A', ft)):
        res = stage_b_sweep(bb, val, alphas=tuple(a.alphas), init_norms=(None,), per_crop=False, work=work)
        summary[name] = {('mao alpha=%g' % k[1]) if isinstance(k, tuple) else k: round(100 * r['mAP'], 2) for k, r in res.items()}
        print(name, json.dumps(summary[name]), flush=True)
        fig = plot_stage_b_sweep(res, f'{name} backbone: MaO against alpha ({a.scenes} validation scenes)')
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        fig.write_html(str(Path(a.out).with_suffix('')) + f"-{name.replace(' ', '_')}.html", include_plotlyjs='cdn')
    summary['scenes'] = a.scenes; summary['queries'] = len(val.queries)
    write_json(Path(a.out), summary); print(f'written {a.out}')


if __name__ == '__main__': main()
