"""The paper's benchmarks from the files researchers have (issue 24): VoxDet's RoboTools tree, the SoIR authors' anns.pt,
PerMiR as its generator writes it, and `mao_nb eval` on each. The files are written by tests/authors_formats.py the way
the authors' own code writes them, never by mao_nb."""
import json, os, shutil, warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT  # noqa: F401
from authors_formats import write_voxdet, write_anns_pt, write_permir, FOREIGN
from test_user_files import one_line
from test_cache import cli


@pytest.fixture(scope='module')
def voxdet(tmp_path_factory):
    t = tmp_path_factory.mktemp('voxdet'); fx = write_voxdet(t/'VoxDet'); fx['pt'] = write_anns_pt(t/'VoxDet', t/'anns.pt')
    return fx


@pytest.fixture(scope='module')
def bb(tmp_path_factory):
    from mao_nb.backbones import backbone_from_config
    p = tmp_path_factory.mktemp('bb')/'bb'; backbone_from_config('dinov2', image_size=32, patch_size=8).save(p); return p


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); return fn(*a, **k)


def test_anns_pt_as_the_authors_write_it_loads_safely(voxdet):
    import torch
    from mao_nb.benchmark_loaders import load_soir_pt
    with pytest.raises(Exception, match='Weights only load failed'): torch.load(voxdet['pt'], weights_only=True)  # numpy scalars inside
    ds = quiet(load_soir_pt, voxdet['pt'], set='RoboTools', image_root=voxdet['root'])
    assert len(ds.gallery) == 3 and len(ds.queries) == 9  # every frame of objects 1-3; object 4 has no gallery image
    assert ds.meta['instances_without_gallery'] == [4] and ds.meta['gallery_masks'] == 'boxes'
    assert all(not q.meta['stored_path'].startswith(str(voxdet['root'])) and q.path.is_file() for q in ds.queries)  # re-rooted
    for r in ds.gallery:
        truth = voxdet['truth'][r.image_id]
        assert sorted(o.instance_id for o in r.objects) == sorted(i for i, _ in truth)
    q = ds.queries[0]; assert q.obj.mask.shape == q.size and q.obj.mask.sum() > 100
    ow = quiet(load_soir_pt, voxdet['pt'], set='OWID', image_root=voxdet['root'])
    assert len(ow.gallery) == 2 and len(ow.queries) == 4 and ow.meta['gallery_masks'] == 'annotated'


def test_anns_pt_with_several_sets_needs_a_choice(voxdet):
    from mao_nb.data import DatasetError
    from mao_nb.benchmark_loaders import load_soir_pt
    with pytest.raises(DatasetError, match=r"holds the sets \['OWID', 'RoboTools'\]"): load_soir_pt(voxdet['pt'], image_root=voxdet['root'])


def test_anns_pt_that_holds_code_is_refused(tmp_path):
    import torch
    from mao_nb.data import DatasetError
    from mao_nb.benchmark_loaders import load_soir_pt
    class Payload:
        def __reduce__(self): return (os.system, (f'touch {tmp_path}/ran',))
    torch.save({'/x/RoboTools/test/a.jpg': {'bbox': Payload(), 'ins': [1], 'is_query': False}}, tmp_path/'evil.pt')
    with pytest.raises(DatasetError, match='refused: it holds posix.system'): load_soir_pt(tmp_path/'evil.pt')
    assert not (tmp_path/'ran').exists()


def test_voxdet_tree_loads_directly_and_equals_anns_pt(voxdet):
    from mao_nb.benchmark_loaders import load_voxdet_soir
    tree = quiet(load_voxdet_soir, voxdet['root']); pt = quiet(load_voxdet_soir, voxdet['root'], ann=voxdet['pt'])
    assert len(tree.queries) == 9 and len(tree.gallery) == 3
    assert [r.image_id for r in tree.gallery] == [r.image_id for r in pt.gallery]
    assert [q.image_id for q in tree.queries] == [q.image_id for q in pt.queries]
    np.testing.assert_array_equal(tree.relevance(), pt.relevance())
    for a, b in zip(tree.queries, pt.queries): np.testing.assert_array_equal(a.obj.mask, b.obj.mask)
    objs = lambda r: sorted((o.instance_id, *np.round(o.box, 3).tolist()) for o in r.objects)  # anns.pt lists the boxes by object, the json by scene
    for a, b in zip(tree.gallery, pt.gallery): assert objs(a) == objs(b)
    assert len(quiet(load_voxdet_soir, voxdet['root']/'RoboTools', views_per_instance=1).queries) == 3


def test_permir_as_its_generator_writes_it(tmp_path):
    from mao_nb.benchmark_loaders import load_permir
    fx = write_permir(tmp_path/'PerMIRS', n_videos=4, small_video=2)
    with pytest.raises(ValueError, match='allow_pickle'): np.load(fx['root']/'0'/'masks.npz.npy')  # what the old loader hit
    ds = load_permir(fx['root'])
    assert ds.meta['excluded_small'] == ['2'] and len(ds.queries) == 3 and len(ds.gallery) == 6
    for q in ds.queries:
        v = q.meta['video']; t = fx['truth'][v]; qf = int(t.sum((1, 2)).argmax())
        assert q.image_id == f'{v}/{qf}.jpg'
        np.testing.assert_array_equal(q.obj.mask, t[qf])
    assert ds.relevance().sum(1).tolist() == [2, 2, 2]


def test_permir_masks_that_hold_code_are_refused(tmp_path):
    from mao_nb.data import DatasetError
    from mao_nb.benchmark_loaders import load_permir
    fx = write_permir(tmp_path/'p', n_videos=2)
    class Payload:
        def __reduce__(self): return (os.system, (f'touch {tmp_path}/ran',))
    np.save(str(fx['root']/'1') + '/masks.npz', [{1: Payload()}] * 3)
    with pytest.raises(DatasetError, match='posix.system'): load_permir(fx['root'])
    assert not (tmp_path/'ran').exists()


def _eval(*args):
    return cli('eval', *map(str, args), '--methods', 'global,average', '--objects', 'oracle', '--iters', '2')


def test_eval_voxdet_tree_and_anns_pt_end_to_end(voxdet, bb, tmp_path):
    rc, out, err = _eval('--format', 'voxdet', '--root', voxdet['root'], '--backbone', bb, '--work', tmp_path/'w')
    assert rc == 0, err
    assert 'voxdet-soir: 3 gallery images, 9 queries' in out and '| oracle | average |' in out
    assert 'published for voxdet-soir (mAP %' in out and 'MaO-DINOv2 fine-tuned 83.70' in out  # the paper's figures beside ours
    rc, out, err = _eval('--format', 'voxdet', '--root', voxdet['root'], '--ann', voxdet['pt'], '--backbone', bb, '--work', tmp_path/'w')
    assert rc == 0 and '3 gallery images, 9 queries' in out, err
    rc, out, err = _eval('--format', 'soir-pt', '--root', voxdet['pt'], '--image-root', voxdet['root'], '--set', 'OWID', '--backbone', bb, '--work', tmp_path/'w')
    assert rc == 0 and '2 gallery images, 4 queries' in out, err
    rc, out, err = _eval('--format', 'soir-pt', '--root', voxdet['pt'], '--image-root', voxdet['root'], '--backbone', bb)
    assert rc == 1 and 'choose one with set=' in one_line(err)


def test_eval_permir_end_to_end(bb, tmp_path):
    fx = write_permir(tmp_path/'PerMIRS', n_videos=3)
    rc, out, err = _eval('--format', 'permir', '--root', fx['root'], '--backbone', bb, '--work', tmp_path/'w')
    assert rc == 0 and 'permir: 6 gallery images, 3 queries' in out, err
    assert 'published for permir' in out


def test_eval_coco_with_distractor_images(bb, tmp_path):
    from coco_fixture import write_coco_fixture as _write_coco_fixture
    fx = _write_coco_fixture(tmp_path/'coco', n_images=4, n_instances=3)
    d = json.loads(fx['ann_json'].read_text()); shutil.copy(fx['image_root']/d['images'][0]['file_name'], fx['image_root']/'distractor.jpg')
    d['images'].append({'id': 999, 'file_name': 'distractor.jpg', 'height': d['images'][0]['height'], 'width': d['images'][0]['width']})
    fx['ann_json'].write_text(json.dumps(d))
    rc, out, err = _eval('--format', 'coco', '--root', fx['ann_json'], '--image-root', fx['image_root'], '--backbone', bb)
    assert rc == 1 and 'pass --allow-empty' in one_line(err)
    rc, out, err = _eval('--format', 'coco', '--root', fx['ann_json'], '--image-root', fx['image_root'], '--backbone', bb, '--allow-empty', '--work', tmp_path/'w')
    assert rc == 0, err
    assert '3 gallery images, 3 queries' in out  # the two scenes left after the largest views became queries, and the distractor


def test_stage_a_trains_on_owid_from_anns_pt(voxdet, bb, tmp_path):
    "The paper trains Stage A on VoxDet's synthetic OWID set: `mao_nb stage-a --soir-pt anns.pt` does, and the adapter loads."
    rc, out, err = cli('stage-a', '--backbone', bb, '--soir-pt', voxdet['pt'], '--image-root', voxdet['root'], '--out', tmp_path/'ad', '--max-steps', '2')
    assert rc == 0, err
    assert 'adapter saved under' in out
    from mao_nb.stage_a import load_adapter, latest_checkpoint
    from mao_nb.backbones import load_backbone
    assert latest_checkpoint(tmp_path/'ad') is not None and load_adapter(load_backbone(bb), tmp_path/'ad').embed_dim == 32
    rc, out, err = cli('stage-a', '--backbone', bb, '--soir-pt', voxdet['pt'], '--image-root', voxdet['root'])
    assert rc == 1 and '--out is required' in one_line(err)
