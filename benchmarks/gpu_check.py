"""The GPU path in one run: versions, Stage B speed and memory by precision, CPU-vs-GPU agreement, the pipeline end to end,
OWLv2 and SAM speed, and Stage A memory per crop, written to one JSON file.

    python benchmarks/gpu_check.py [--out $OUT/gpu_check.json] [--budget 480]   # on a GPU machine
    python benchmarks/gpu_check.py --cpu-smoke                                   # the same code paths at tiny sizes, on the CPU

Every model has random weights built from a config (speed and agreement do not depend on the weights; nothing is
downloaded). Each section runs in its own try/except, so one failure does not lose the others; the JSON is rewritten
atomically after every section; when the time budget is spent the remaining sections (and the remaining Stage B cases)
are recorded as skipped. Sections:

- env: python, torch (+ CUDA), transformers, faiss, torchvision, peft, segment_anything versions; what is missing;
- stage_b: ms per object (encoding + per iteration, and extrapolated to 80 iterations) and peak GPU memory for a random
  ViT-B/14 (DINOv2, 224 px) and SigLIP-B/16 (384 px), N objects in {128, 512, 2048}, precisions fp32/tf32/bf16/fp16;
- agreement: CPU fp32 against the device (fp32, and each lower precision) for embeddings, LeGrad maps (on a DINOv2 with
  layer scale 1e-3, where float16 gradients underflow without `mao_nb.legrad.GRAD_SCALE`) and a 10-step Stage B run;
- mao_vectors: `mao_nb.stage_b.mao_vectors` end to end on scenes of the `tiny` haystack preset (ORACLE objects);
- owlv2: seconds per image of OWLv2 objectness (bf16, 960 px);
- sam: seconds per image of SAM vit_b with 16 box prompts;
- stage_a_memory: MiB per crop of one Stage A step, with and without activation checkpointing and with micro-batches.
"""
import argparse, importlib, json, os, platform, sys, time, traceback
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mao_nb, where it is not installed
import torch

MIB = 2 ** 20

# sizes of the full run and of the CPU smoke run (same code paths)
FULL = dict(
    stage_b_models={'vit_b14_224': ('dinov2', dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, mlp_ratio=4,
                                                   image_size=224, patch_size=14)),
                    'siglip_b16_384': ('siglip', dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                                      num_attention_heads=12, image_size=384, patch_size=16))},
    stage_b_n=(128, 512, 2048), precisions=('fp32', 'tf32', 'bf16', 'fp16'), stage_b_iters=5, max_objects=None, repeats=2,
    full_iters=80,
    agree_model=dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, mlp_ratio=4, image_size=224, patch_size=14,
                     layerscale_value=1e-3),
    agree_n=8, scenes=8, scene_iters=80, owl=dict(image_size=960, n_images=8, batch=4), sam='vit_b', sam_images=4, sam_boxes=16,
    stage_a_crops=32, stage_a_micro=16)
SMOKE = dict(
    stage_b_models={'vit_tiny': ('dinov2', dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=14)),
                    'siglip_tiny': ('siglip', dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                   image_size=32, patch_size=16))},
    stage_b_n=(4, 8), precisions=('fp32', 'tf32', 'bf16', 'fp16'), stage_b_iters=3, max_objects=4, repeats=1, full_iters=4,
    agree_model=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=56, patch_size=14, layerscale_value=1e-3),
    agree_n=2, scenes=2, scene_iters=3, owl=dict(image_size=64, n_images=2, batch=2), sam='tiny', sam_images=1, sam_boxes=2,
    stage_a_crops=8, stage_a_micro=4)


def sync(dev):
    if torch.device(dev).type == 'cuda': torch.cuda.synchronize()

def reset_peak(dev):
    if torch.device(dev).type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)

def peak_mib(dev): # peak GPU memory since `reset_peak` (None on the CPU)
    return torch.cuda.max_memory_allocated(dev) / MIB if torch.device(dev).type == 'cuda' else None

def free(dev):
    import gc; gc.collect()
    if torch.device(dev).type == 'cuda': torch.cuda.empty_cache()


class Check:
    "Runs sections under a global time budget, each in try/except, rewriting the JSON atomically after each."
    def __init__(self, out: Path, budget: float):
        self.out, self.budget, self.t0, self.res = out, budget, time.time(), {}
    def left(self) -> float: return self.budget - (time.time() - self.t0)
    def write(self):
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(f'.{self.out.name}.tmp')
        tmp.write_text(json.dumps(self.res, indent=1, default=str)); os.replace(tmp, self.out)
    def section(self, name: str, fn, *args):
        t = time.time()
        if self.left() <= 0: r = {'skipped': f'time budget of {self.budget:.0f} s spent'}
        else:
            try: r = fn(self, *args)
            except Exception as e: r = {'error': f'{type(e).__name__}: {e}', 'traceback': traceback.format_exc()[-3000:]}
        r['seconds'] = round(time.time() - t, 2); self.res[name] = r; self.write()
        show = {k: v for k, v in r.items() if k != 'traceback'}
        print(f'== {name}: {json.dumps(show, default=str)}', flush=True)


# ---------------------------------------------------------------- sections

def env(ck, S, dev):
    "Versions, the device, and what is missing."
    r = {'python': platform.python_version(), 'platform': platform.platform(), 'missing': []}
    for m in ('torch', 'transformers', 'faiss', 'torchvision', 'peft', 'segment_anything', 'numpy', 'fastcore', 'mao_nb'):
        try: r[m] = getattr(importlib.import_module(m), '__version__', 'installed')
        except Exception as e: r[m] = f'missing ({type(e).__name__}: {e})'; r['missing'].append(m)
    r['torch_cuda'] = torch.version.cuda; r['cuda_available'] = torch.cuda.is_available(); r['device'] = str(dev)
    if torch.cuda.is_available():
        r.update(gpu=torch.cuda.get_device_name(0), capability='.'.join(map(str, torch.cuda.get_device_capability(0))),
                 bf16_supported=torch.cuda.is_bf16_supported(), gpus=torch.cuda.device_count(),
                 total_mib=round(torch.cuda.get_device_properties(0).total_memory / MIB))
    try:
        import faiss; r['faiss_gpus'] = faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0
    except Exception: r['faiss_gpus'] = 0
    r['cpu_threads'] = torch.get_num_threads()
    return r


def _crops(N, size, seed=0):
    "N random uint8 crops, a mask (a centred rectangle) per crop, and 8 objects per image."
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (N, 3, size, size), dtype=torch.uint8, generator=g)
    masks = torch.zeros(N, size, size); masks[:, size // 3:2 * size // 3, size // 4:3 * size // 4] = 1
    return pixels, masks, torch.arange(N) // 8

@contextmanager
def _exact_fp32(precision):
    "Convolutions (the patch embedding) in TF32 only on the tf32 row: cuDNN's TF32 is on by default, which made fp32 rows partly TF32."
    old = torch.backends.cudnn.allow_tf32  # matrix products: `precision_context` sets them (fp32 = highest, tf32 = high)
    torch.backends.cudnn.allow_tf32 = precision == 'tf32'
    try: yield
    finally: torch.backends.cudnn.allow_tf32 = old

def _optimise(bb, pixels, masks, group, iters, chunk):
    "Encoding seconds, optimisation seconds, vectors and losses of one Stage B run over every chunk of objects."
    from mao_nb.stage_b import StageBConfig, encode_objects, optimise_vectors
    dev = bb.device; cfg = StageBConfig(iters=iters, max_objects=None); t_enc = t_opt = 0.; N = len(pixels)
    for lo in range(0, N, chunk):
        sl = slice(lo, lo + chunk); g = group[sl] - group[sl].min()
        sync(dev); t = time.perf_counter()
        emb, cache = encode_objects(bb, pixels[sl])
        sync(dev); t_enc += time.perf_counter() - t; t = time.perf_counter()
        V, hist = optimise_vectors(bb, cache, masks[sl], g.to(dev), emb, int(g.max()) + 1, cfg)
        sync(dev); t_opt += time.perf_counter() - t
        del emb, cache
    return t_enc, t_opt, V, hist

def stage_b_case(bb, N, precision, iters, max_objects, repeats=1):
    """ms per object of Stage B for N objects: encoding, set-up (the optimiser's one-off work), and per iteration,
    from runs of 1 and of `iters` iterations (per iteration = their difference / (iters - 1), so set-up is counted
    once); the fastest of `repeats` runs. `max_objects` None: all N objects in one batch."""
    from mao_nb.backbones import precision_context
    dev = bb.device; pixels, masks, group = _crops(N, bb.image_size); chunk = max_objects or N
    best = None
    with _exact_fp32(precision), precision_context(precision, dev):
        for _ in range(repeats):
            reset_peak(dev)
            e1, o1, _, _ = _optimise(bb, pixels, masks, group, 1, chunk)
            en, on, V, hist = _optimise(bb, pixels, masks, group, iters, chunk)
            per_iter = max(on - o1, 0.) / max(iters - 1, 1) / N; setup = max(o1 / N - per_iter, 0.); enc = min(e1, en) / N
            run = {'ms_per_object_encode': 1e3 * enc, 'ms_per_object_setup': 1e3 * setup, 'ms_per_object_per_iter': 1e3 * per_iter,
                   'ms_per_object_80_iters': 1e3 * (enc + setup + 80 * per_iter), 'peak_mib': peak_mib(dev),
                   'finite': bool(torch.isfinite(V).all()) and all(v == v for v in hist['loss'])}
            if best is None or run['ms_per_object_80_iters'] < best['ms_per_object_80_iters']: best = run
    best.update(objects=N, batch=chunk, repeats=repeats)
    return best

def stage_b_timed(bb, N, precision, iters, max_objects):
    "The real thing for one case: `iters` iterations timed as they run (encoding included), ms per object."
    from mao_nb.backbones import precision_context
    dev = bb.device; pixels, masks, group = _crops(N, bb.image_size)
    with _exact_fp32(precision), precision_context(precision, dev):
        reset_peak(dev); e, o, V, _ = _optimise(bb, pixels, masks, group, iters, max_objects or N)
    return {'objects': N, 'iters': iters, 'precision': precision, 'ms_per_object': 1e3 * (e + o) / N, 'peak_mib': peak_mib(dev),
            'finite': bool(torch.isfinite(V).all())}

def stage_b(ck, S, dev):
    "Stage B ms per object and peak memory, per model, N and precision; the JSON is rewritten after every case."
    from mao_nb.backbones import backbone_from_config, default_precision
    r = ck.res['stage_b'] = {'iters_timed': S['stage_b_iters'], 'max_objects': S['max_objects'], 'objects_per_image': 8}
    for name, (fam, kw) in S['stage_b_models'].items():
        r[name] = {}
        try:
            bb = backbone_from_config(fam, device=dev, attn_implementation='eager', **kw)
            for p in bb.parameters(): p.requires_grad_(False)
        except Exception as e: r[name]['error'] = f'{type(e).__name__}: {str(e)[:300]}'; continue
        for prec in S['precisions']:  # warm-up of every precision (kernels, allocator), each in its own try
            try: stage_b_case(bb, 8, prec, 2, S['max_objects'])
            except Exception as e: r[name][f'warmup_{prec}'] = {'error': f'{type(e).__name__}: {str(e)[:300]}'}
        for N in S['stage_b_n']:
            for prec in S['precisions']:
                key = f'N{N}_{prec}'
                if ck.left() <= 0: r[name][key] = {'skipped': 'time budget spent'}; continue
                try: r[name][key] = stage_b_case(bb, N, prec, S['stage_b_iters'], S['max_objects'], S['repeats'])
                except Exception as e: r[name][key] = {'error': f'{type(e).__name__}: {str(e)[:300]}'}
                ck.write()
        prec = default_precision(dev); key = f'N{S["stage_b_n"][0]}_{prec}_{S["full_iters"]}iters'
        try: r[name][key] = stage_b_timed(bb, S['stage_b_n'][0], prec, S['full_iters'], S['max_objects']) if ck.left() > 0 else {'skipped': 'time budget spent'}
        except Exception as e: r[name][key] = {'error': f'{type(e).__name__}: {str(e)[:300]}'}
        ck.write(); del bb; free(dev)
    return r


def _corr(a, b): return float(torch.corrcoef(torch.stack([a.flatten().float(), b.flatten().float()]))[0, 1])

def agreement(ck, S, dev):
    "CPU float32 against the device, for embeddings, LeGrad maps and a 10-step Stage B trajectory."
    from mao_nb.backbones import backbone_from_config, precision_context
    from mao_nb.legrad import legrad_features, legrad_from_cache
    from mao_nb.stage_b import StageBConfig, encode_objects, optimise_vectors
    kw = S['agree_model']; n = S['agree_n']
    pixels, masks, _ = _crops(n, kw['image_size'], seed=1); group = torch.arange(n) // 2
    e = torch.randn(n, kw['hidden_size'], generator=torch.Generator().manual_seed(2))
    def run(device, precision):
        bb = backbone_from_config('dinov2', device=device, attn_implementation='eager', **kw)
        for p in bb.parameters(): p.requires_grad_(False)
        with precision_context(precision, device):
            with torch.no_grad(): emb = bb.embed(bb.preprocess(pixels)).float().cpu()
            maps = legrad_from_cache(bb, legrad_features(bb, bb.preprocess(pixels)), e.to(device)).float().cpu()
            em, cache = encode_objects(bb, pixels)
            V, hist = optimise_vectors(bb, cache, masks, group.to(device), em, int(group.max()) + 1, StageBConfig(iters=10))
        return emb, maps, V.float().cpu(), hist['loss']
    ref = run('cpu', 'fp32'); r = {'device': str(dev), 'objects': n}
    for prec in S['precisions']:
        emb, maps, V, loss = run(dev, prec)
        r[prec] = {'embed_max_abs_diff': float((emb - ref[0]).abs().max()), 'embed_min_cos': float((emb * ref[0]).sum(-1).min()),
                   'legrad_max_abs_diff': float((maps - ref[1]).abs().max()), 'legrad_corr': _corr(maps, ref[1]),
                   'legrad_zero_fraction': float((maps == 0).float().mean()),
                   'stage_b_loss_max_abs_diff': max(abs(a - b) for a, b in zip(loss, ref[3])),
                   'stage_b_vectors_min_cos': float((V * ref[2]).sum(-1).min())}
    return r


def mao_vectors_e2e(ck, S, dev):
    "`mao_vectors` on scenes of the tiny haystack preset, ORACLE objects, at the default precision of the device."
    from mao_nb.haystack import get_config, benchmark_instances, make_scene
    from mao_nb.backbones import backbone_from_config, precision_context, default_precision
    from mao_nb.stage_b import StageBConfig, mao_vectors
    cfg = get_config('tiny'); insts = benchmark_instances(cfg)
    recs = [make_scene(cfg, 'test', i, insts) for i in range(S['scenes'])]
    fam, kw = next(iter(S['stage_b_models'].values()))
    bb = backbone_from_config(fam, device=dev, attn_implementation='eager', **kw)
    for p in bb.parameters(): p.requires_grad_(False)
    prec = default_precision(dev); sync(dev); reset_peak(dev); t = time.perf_counter()
    with precision_context(prec, dev): V = mao_vectors(bb, recs, StageBConfig(iters=S['scene_iters']), progress=False)
    sync(dev); dt = time.perf_counter() - t
    return {'precision': prec, 'images': len(recs), 'objects': sum(len(r.objects) for r in recs), 'iters': S['scene_iters'],
            'seconds_per_image': dt / len(recs), 'peak_mib': peak_mib(dev), 'finite': bool(torch.isfinite(V).all()),
            'max_norm_error': float((V.norm(dim=-1) - 1).abs().max())}


def _scenes(n, size=(480, 640)):
    import numpy as np
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, size + (3,), dtype=np.uint8) for _ in range(n)]

def owlv2(ck, S, dev):
    "Seconds per image of OWLv2 objectness, random weights, bfloat16."
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor
    from mao_nb.detection import Owlv2Objectness
    o = S['owl']; side = o['image_size']
    if side == 960: cfg = Owlv2Config(vision_config=dict(image_size=960, patch_size=16))  # owlv2-base-patch16 at 960 px
    else: cfg = Owlv2Config(text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
                            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                               image_size=side, patch_size=16), projection_dim=32)
    model = Owlv2ForObjectDetection(cfg).to(torch.bfloat16)
    owl = Owlv2Objectness(model, Owlv2ImageProcessor(size={'height': side, 'width': side}), batch_size=o['batch'], device=dev)
    imgs = _scenes(o['n_images']); owl(imgs[:1])  # warm-up
    sync(dev); reset_peak(dev); t = time.perf_counter(); dets = owl(imgs); sync(dev); dt = time.perf_counter() - t
    return {'image_size': side, 'dtype': 'bf16', 'images': len(imgs), 'seconds_per_image': dt / len(imgs), 'peak_mib': peak_mib(dev),
            'detections_per_image': sum(map(len, dets)) / len(imgs),
            'note': 'random weights score every token near 0.5, so every box goes through NMS: seconds per image are an upper '
                    'bound for the real model, and detections per image mean nothing'}


def sam(ck, S, dev):
    "Seconds per image of SAM with box prompts (16 on the GPU), random weights."
    import numpy as np
    from mao_nb.masks import load_sam, SamBoxMasker
    if S['sam'] == 'tiny':
        from segment_anything.build_sam import _build_sam
        model = _build_sam(32, 2, 2, [1]).to(dev).eval()  # a 2-block image encoder of width 32 (still 1024 px input)
    else: model = load_sam(S['sam'], random_weights=True, device=dev)
    masker = SamBoxMasker(model); imgs = _scenes(S['sam_images'] + 1)
    boxes = np.array([[40 * i, 30, 40 * i + 80, 150] for i in range(S['sam_boxes'])], np.float32)
    masker(imgs[0], boxes)  # warm-up
    sync(dev); reset_peak(dev); t = time.perf_counter()
    for im in imgs[1:]: m, q = masker(im, boxes)
    sync(dev); dt = time.perf_counter() - t
    return {'model': S['sam'], 'images': len(imgs) - 1, 'boxes_per_image': len(boxes), 'seconds_per_image': dt / (len(imgs) - 1),
            'peak_mib': peak_mib(dev), 'mask_shape': list(m.shape)}


def _stage_a_mib(bb, crops, group, queries, pos, cfg, dev) -> tuple:
    "(MiB, how) of one Stage A step: peak GPU memory above the start, or on the CPU the bytes saved for the backward pass."
    from mao_nb.stage_a import stage_a_backward
    bb.model.zero_grad(set_to_none=True); free(dev)
    if torch.device(dev).type == 'cuda':
        sync(dev); base = torch.cuda.memory_allocated(dev); reset_peak(dev)
        stage_a_backward(bb, crops, group, queries, pos, cfg); sync(dev)
        return (torch.cuda.max_memory_allocated(dev) - base) / MIB, 'peak CUDA memory above the start of the step'
    saved = [0]
    def pack(t): saved[0] += t.numel() * t.element_size(); return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t): stage_a_backward(bb, crops, group, queries, pos, cfg)
    return saved[0] / MIB, 'bytes saved for the backward pass (CPU: no allocator statistics)'

def stage_a_memory(ck, S, dev):
    "MiB per crop of one Stage A step (LoRA r=16), plain, with checkpointing, and with micro-batches + checkpointing."
    from dataclasses import replace
    from mao_nb.backbones import backbone_from_config, precision_context, default_precision
    from mao_nb.stage_a import StageAConfig, add_lora, set_checkpointing
    fam, kw = next(iter(S['stage_b_models'].values()))
    bb = backbone_from_config(fam, device=dev, **kw); cfg = StageAConfig(r=16, lora_alpha=16, lora_dropout=0.)
    add_lora(bb, cfg); bb.model.train()
    n = S['stage_a_crops']; B = max(1, n // 8); g = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (n, 3, bb.image_size, bb.image_size), dtype=torch.uint8, generator=g)
    queries = torch.randint(0, 256, (B, 3, bb.image_size, bb.image_size), dtype=torch.uint8, generator=g)
    group, pos = torch.arange(n) // 8, torch.eye(B, dtype=torch.bool)
    prec = default_precision(dev); r = {'crops': n, 'queries': B, 'precision': prec}
    for name, ckpt, micro in (('plain', False, None), ('checkpointing', True, None), (f'micro{S["stage_a_micro"]}_checkpointing', True, S['stage_a_micro'])):
        set_checkpointing(bb, ckpt)
        with precision_context(prec, dev): mib, how = _stage_a_mib(bb, crops, group, queries, pos, replace(cfg, micro_batch=micro), dev)
        r[name] = {'mib': mib, 'mib_per_crop': mib / (n + B)}; r['measured'] = how
    set_checkpointing(bb, False)
    return r


# ---------------------------------------------------------------- main

SECTIONS = ('env', 'stage_b', 'agreement', 'mao_vectors', 'owlv2', 'sam', 'stage_a_memory')

def use_wheels(root: Path = Path(__file__).resolve().parent.parent, site: Path = Path('/tmp/mao_nb-site')) -> list:
    "On a machine that cannot download: install the wheels carried in the checkout's .whl/ (`make gpu-wheels`) into `site`, first on the path."
    need = [m for m in ('fastcore', 'segment_anything', 'faiss', 'plotly') if importlib.util.find_spec(m) is None]
    wheels = sorted((root/'.whl').glob('*.whl'))
    if need and wheels:
        import subprocess
        r = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile', '--upgrade',
                            '--target', str(site), *map(str, wheels)], capture_output=True, text=True)
        if r.returncode: print(f'gpu_check: installing {root/".whl"} failed: {r.stderr.strip()[-300:]}')
        sys.path.append(str(site)); importlib.invalidate_caches()
    return [m for m in need if importlib.util.find_spec(m) is None]

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=None, help='JSON file (default: $OUT/gpu_check.json, else benchmarks/results/gpu/gpu_check.json)')
    ap.add_argument('--budget', type=float, default=480, help='seconds; sections not started in time are recorded as skipped')
    ap.add_argument('--cpu-smoke', action='store_true', help='tiny sizes on the CPU: the same code paths, in under two minutes')
    ap.add_argument('--only', nargs='*', choices=SECTIONS, help='run only these sections')
    a = ap.parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import importlib.util
    still = use_wheels()
    if still: print(f'gpu_check: missing {still} (no wheels for them in .whl/: run `make gpu-wheels` where you can download)')
    import warnings; warnings.simplefilter('ignore')
    out = Path(a.out or Path(os.environ.get('OUT') or 'benchmarks/results/gpu')/'gpu_check.json')
    S = SMOKE if a.cpu_smoke else FULL
    dev = torch.device('cpu' if a.cpu_smoke or not torch.cuda.is_available() else 'cuda')
    if dev.type == 'cpu' and not a.cpu_smoke: print('gpu_check: no CUDA device; the full sizes will be slow on the CPU (use --cpu-smoke)')
    ck = Check(out, a.budget); ck.res['mode'] = 'cpu-smoke' if a.cpu_smoke else 'full'
    fns = {'env': env, 'stage_b': stage_b, 'agreement': agreement, 'mao_vectors': mao_vectors_e2e, 'owlv2': owlv2, 'sam': sam,
           'stage_a_memory': stage_a_memory}
    for name in a.only or SECTIONS: ck.section(name, fns[name], S, dev)
    bad = [k for k in SECTIONS if isinstance(ck.res.get(k), dict) and ('error' in ck.res[k] or 'skipped' in ck.res[k])]
    print(f'gpu_check: wrote {out} in {time.time() - ck.t0:.0f} s; ' + (f'failed or skipped: {bad}' if bad else 'every section ran'))
    return 1 if bad else 0

if __name__ == '__main__': sys.exit(main())
