"""Peak memory of `mao_nb index` on one photo, by photo size: a 400x300, a 12-megapixel and a 24-megapixel JPEG, in one run.

Each size is indexed by its own `mao_nb index` process (default backbone, offline detector, colour masks, MaO), and the
peak resident memory (RSS) of that process is read from the kernel's accounting of finished children. The target:
the 24-MP photo costs at most 1 GiB more than the 400x300 one.

    .venv/bin/python benchmarks/bench_memory.py            # prints one line per size and the difference
    .venv/bin/python benchmarks/bench_memory.py --json     # the same as JSON
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

PROBE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stderr.write(r.stderr[-3000:] if r.returncode else ''); sys.exit(r.returncode)")


def photo(path: Path, w: int, h: int):
    "A scene of the generated benchmark, resized to w x h and saved as a phone would (JPEG, quality 90)."
    from PIL import Image
    from mao_nb.haystack import load_benchmark
    scene = load_benchmark('tiny', progress=False)['test'].gallery[0].load()
    Image.fromarray(scene).resize((w, h), Image.BICUBIC).save(path, quality=90)


def peak_rss_mib(folder: Path, idx: Path, iters: int) -> float:
    "Peak RSS (MiB) of one `mao_nb index` process on `folder`."
    exe = Path(sys.executable).parent/'mao_nb'
    r = subprocess.run([sys.executable, '-c', PROBE, str(exe), 'index', str(folder), '--index', str(idx), '--iters', str(iters)],
                       capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    if r.returncode: sys.exit(f'bench_memory: mao_nb index failed on {folder}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}')
    return int(r.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--iters', type=int, default=80, help='Stage B iterations (default 80, the paper)')
    p.add_argument('--json', action='store_true')
    a = p.parse_args()
    sizes = {'400x300': (400, 300), '12 MP (4000x3000)': (4000, 3000), '24 MP (6000x4000)': (6000, 4000)}
    out = {}
    with tempfile.TemporaryDirectory() as t:
        for name, (w, h) in sizes.items():
            d = Path(t)/f'{w}x{h}'; d.mkdir(); photo(d/'photo.jpg', w, h)
            out[name] = peak_rss_mib(d, Path(t)/f'idx{w}', a.iters)
            if not a.json: print(f'{name:>20}: peak RSS {out[name]:7.0f} MiB', flush=True)
    extra = out['24 MP (6000x4000)'] - out['400x300']
    if a.json: print(json.dumps({'peak_rss_mib': out, 'extra_24mp_mib': extra, 'target_mib': 1024}))
    else: print(f'24 MP costs {extra:.0f} MiB more than 400x300 (target: at most 1024 MiB)')


if __name__ == '__main__':
    main()
