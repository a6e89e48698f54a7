"""Models and checkpoints from folders the user names: identity of a backbone (for cache keys), checkpoints that
cannot run code, resumption that checks what it resumes, atomic model export, no silent random or mis-sized weights,
and bounded memory when embedding queries. Tiny random models only; everything under tmp_path."""
import json, pickle, warnings
from pathlib import Path

import pytest
import torch

from conftest import ROOT  # noqa: F401  (sets HF_HUB_OFFLINE before transformers is imported)

from mao_nb.backbones import backbone_from_config, load_backbone
from mao_nb.data import toy_dataset
from mao_nb import pretrain, stage_a
from mao_nb.pretrain import PretrainConfig
from mao_nb.stage_a import StageAConfig, stage_a_data, train_stage_a, load_adapter
from mao_nb.descriptors import query_vectors

TINY_A = StageAConfig(r=4, lora_alpha=8, lr=1e-2, batch=3, epochs=2, ckpt_every=1, lora_dropout=0.)
TINY_P = PretrainConfig(benchmark='tiny', image_size=32, hidden_size=32, num_layers=2, num_heads=4, mlp_ratio=2,
                        views_per_instance=2, view_size=96, instances_per_batch=4, views_per_batch=3, steps=4, warmup=1, ckpt_every=1)


@pytest.fixture(scope='module')
def toy():
    return toy_dataset(n_gallery=6)


@pytest.fixture(scope='module')
def data(toy):
    return stage_a_data(toy, 32, progress=False)


def _bb(**kw):
    return backbone_from_config('dinov2', image_size=32, patch_size=8, **kw)


@pytest.fixture
def fake_training_data(monkeypatch, tmp_path):
    "train_backbone without rendering a benchmark: random crops of 6 instances; caches under tmp_path."
    monkeypatch.setenv('MAO_NB_CACHE', str(tmp_path/'cache'))
    g = torch.Generator().manual_seed(0)
    d = dict(crops=torch.randint(0, 256, (36, 3, 40, 40), dtype=torch.uint8, generator=g),
             ids=torch.arange(6).repeat_interleave(6), source=torch.zeros(36, dtype=torch.int8))
    monkeypatch.setattr(pretrain, 'training_data', lambda cfg, progress=True: d)
    return d


class _Planted:
    "Unpickling this runs code: it writes `marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _plant(path: Path, marker: Path):
    torch.save({'step': 1, 'payload': _Planted(marker)}, path)


# 1. backbone identity ------------------------------------------------------------------------------------------

def test_fingerprint_identity(tmp_path, data):
    a, b = _bb(), _bb()
    assert isinstance(a.fingerprint(), str) and len(a.fingerprint()) >= 12
    assert a.fingerprint() == b.fingerprint()  # same weights, same fingerprint
    a.save(tmp_path/'bb')
    l1, l2 = load_backbone(tmp_path/'bb', device='cpu'), load_backbone(tmp_path/'bb', device='cpu')
    assert l1.fingerprint() == l2.fingerprint() == a.fingerprint()  # two loads of the same weights
    assert isinstance(l1.name, str) and 'bb' in l1.name and isinstance(a.name, str) and a.name
    assert _bb(seed=1).fingerprint() != a.fingerprint()
    resized = _bb(); resized.image_size = 16
    assert resized.fingerprint() != a.fingerprint()  # preprocessing is part of the identity
    trained, _ = train_stage_a(_bb(), data, TINY_A, out=tmp_path/'a', max_steps=1, progress=False)
    adapted = load_adapter(a, tmp_path/'a')
    assert adapted.fingerprint() != a.fingerprint()  # a stage A adapter changes it
    assert trained.fingerprint() != a.fingerprint()
    before = b.fingerprint()
    with torch.no_grad(): next(b.model.parameters()).view(-1)[0] += 1e-3  # one parameter changed in place
    assert b.fingerprint() != before


# 2. checkpoints cannot run code ----------------------------------------------------------------------------------

def test_stage_a_resume_refuses_pickled_code(tmp_path, data):
    out = tmp_path/'a'
    train_stage_a(_bb(), data, TINY_A, out=out, max_steps=1, progress=False)
    st = stage_a.latest_checkpoint(out)/'state.pt'; marker = tmp_path/'marker'
    _plant(st, marker)
    with pytest.raises(ValueError, match='state.pt'):
        train_stage_a(_bb(), data, TINY_A, out=out, progress=False)
    assert not marker.exists()


def test_pretrain_resume_refuses_pickled_code(tmp_path, fake_training_data):
    dest = tmp_path/'vit'; dest.mkdir(); marker = tmp_path/'marker'
    _plant(dest/'checkpoint.pt', marker)
    with pytest.raises(ValueError, match='checkpoint.pt'):
        pretrain.train_backbone(TINY_P, dest, progress=False)
    assert not marker.exists()


def test_training_data_cache_refuses_pickled_code(tmp_path, monkeypatch):
    monkeypatch.setenv('MAO_NB_CACHE', str(tmp_path/'cache'))
    path = pretrain._training_data_path(TINY_P); marker = tmp_path/'marker'
    path.parent.mkdir(parents=True, exist_ok=True); _plant(path, marker)
    with pytest.raises(ValueError, match=path.name):
        pretrain.training_data(TINY_P, progress=False)
    assert not marker.exists()


def test_checkpoints_load_weights_only(tmp_path, data, fake_training_data):
    "What the trainers save loads with weights_only=True."
    train_stage_a(_bb(), data, TINY_A, out=tmp_path/'a', max_steps=1, progress=False)
    torch.load(stage_a.latest_checkpoint(tmp_path/'a')/'state.pt', weights_only=True)
    pretrain.train_backbone(TINY_P, tmp_path/'vit', progress=False, max_steps=1)
    torch.load(tmp_path/'vit'/'checkpoint.pt', weights_only=True)


# 3. resumption checks what it resumes ----------------------------------------------------------------------------

def test_stage_a_resume_checks_config_and_backbone(tmp_path, data):
    out = tmp_path/'a'
    train_stage_a(_bb(), data, TINY_A, out=out, max_steps=1, progress=False)
    other = StageAConfig(**{**TINY_A.__dict__, 'lr': 5e-3})
    with pytest.raises(ValueError) as e: train_stage_a(_bb(), data, other, out=out, progress=False)
    assert str(out) in str(e.value) and 'lr' in str(e.value) and '0.005' in str(e.value)
    with pytest.raises(ValueError) as e: train_stage_a(_bb(seed=1), data, TINY_A, out=out, progress=False)
    assert str(out) in str(e.value) and 'backbone' in str(e.value)
    _, losses = train_stage_a(_bb(), data, TINY_A, out=out, progress=False)  # the same run resumes
    assert len(losses) == TINY_A.steps(len(data.usable))


def test_pretrain_resume_checks_config(tmp_path, fake_training_data):
    dest = tmp_path/'vit'
    pretrain.train_backbone(TINY_P, dest, progress=False, max_steps=1)
    with pytest.raises(ValueError) as e:
        pretrain.train_backbone(PretrainConfig(**{**TINY_P.__dict__, 'lr': 2e-3}), dest, progress=False)
    assert str(dest) in str(e.value) and 'lr (checkpoint 0.001, now 0.002)' in str(e.value)


# 4. atomic export, and no writes into the shipped model by default ------------------------------------------------

def test_finish_is_atomic(tmp_path, monkeypatch):
    dest = tmp_path/'vit'; dest.mkdir()
    (dest/'README.md').write_text('hand-written')
    old, new = _bb(), _bb(seed=1)
    pretrain._finish(old, dest, TINY_P, [dict(step=1, loss=1., lr=1e-3, seconds=0.1)], 10)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(pretrain, 'write_json', boom)  # fails after the model files are written
    with pytest.raises(OSError): pretrain._finish(new, dest, TINY_P, [dict(step=1, loss=2., lr=1e-3, seconds=0.1)] * 2, 10)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before  # the old, complete folder
    monkeypatch.undo()
    pretrain._finish(new, dest, TINY_P, [dict(step=1, loss=2., lr=1e-3, seconds=0.1)] * 2, 10)
    assert (dest/'README.md').read_text() == 'hand-written'
    assert load_backbone(dest, device='cpu').fingerprint() == new.fingerprint()
    assert [p.name for p in tmp_path.iterdir()] == ['vit']  # no temporary folder left


def test_train_backbone_default_dest_is_not_shipped(tmp_path, monkeypatch, fake_training_data):
    monkeypatch.setenv('MAO_NB_DATA', str(tmp_path/'data'))
    pretrain.train_backbone(TINY_P, progress=False, max_steps=1)
    assert not (tmp_path/'data'/'mao_vit').exists()
    assert list((tmp_path/'cache').rglob('checkpoint.pt'))


# 5. SAM needs its weights -----------------------------------------------------------------------------------------

def test_sam_requires_checkpoint(monkeypatch):
    import segment_anything
    from mao_nb.masks import load_sam
    built = []
    monkeypatch.setitem(segment_anything.sam_model_registry, 'vit_b', lambda checkpoint=None: built.append(1) or torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match='sam_checkpoint is required'): load_sam('vit_b', device='cpu')
    assert not built  # refused before building a model
    assert isinstance(load_sam('vit_b', device='cpu', random_weights=True), torch.nn.Linear)


# 6. no silent fallback to the config's image size -----------------------------------------------------------------

def test_missing_preprocessor_config(tmp_path):
    bb = backbone_from_config('dinov2', image_size=64, patch_size=8); bb.image_size = 32
    bb.model.save_pretrained(tmp_path/'dino')  # weights and config, no preprocessor_config.json
    with pytest.raises(ValueError) as e: load_backbone(tmp_path/'dino', device='cpu')
    assert str(tmp_path/'dino') in str(e.value) and 'preprocessor_config.json' in str(e.value)
    assert load_backbone(tmp_path/'dino', device='cpu', image_size=32).image_size == 32  # explicit override
    (tmp_path/'dino'/'preprocessor_config.json').write_text('{not json')
    with pytest.raises(ValueError, match='preprocessor_config.json'): load_backbone(tmp_path/'dino', device='cpu')
    bb.save(tmp_path/'ok')
    assert load_backbone(tmp_path/'ok', device='cpu').image_size == 32


# 7. query embedding in bounded batches ----------------------------------------------------------------------------

def test_query_vectors_batched(toy, monkeypatch):
    bb = _bb(); qs = list(toy.queries) * 3
    ref = torch.cat([query_vectors(bb, [q]) for q in qs])
    events, crop = [], stage_a.crop_objects
    monkeypatch.setattr(stage_a, 'crop_objects', lambda *a, **k: events.append('crop') or crop(*a, **k))
    embed = bb.embed
    bb.embed = lambda *a, **k: events.append('embed') or embed(*a, **k)
    got = query_vectors(bb, qs, batch=2)
    assert torch.allclose(got, ref, atol=1e-6)
    assert events.index('embed') <= 2  # no more than one batch of crops is cut before it is embedded
    assert events.count('embed') == 3
