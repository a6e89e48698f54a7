"""Safe with the user's files and machine (issue 23): nothing the project did not write is deleted, one bad image is that
image's failure, big photos fit in memory, Ctrl-C and failed writes give one line, and a saved index is what it claims.

Each test is named after the finding it covers (the numbers are the issue's)."""
import json, os, re, shutil, signal, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, BIN  # noqa: F401
from test_cache import assets, cli, index_of  # noqa: F401  (the module's photos and tiny backbone)

ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}


def tree(p: Path) -> dict:
    "Every file under p with its contents: what must survive an operation untouched."
    return {q.relative_to(p).as_posix(): q.read_bytes() for q in sorted(p.rglob('*')) if q.is_file()}


def one_line(err: str) -> str:
    "The one line a failure prints, besides progress bars and warnings (asserted to be one line, no traceback)."
    lines = [l for l in err.replace('\r', '\n').splitlines() if l.strip() and '%|' not in l and 'Warning' not in l and 'warnings.warn' not in l]
    assert 'Traceback' not in err and len(lines) == 1, err[-2000:]
    return lines[0]


# 1 -------------------------------------------------------------------------------------------------------------------
def test_1_index_refuses_a_folder_with_a_foreign_meta_json(assets, tmp_path):
    proj = tmp_path/'proj'; (proj/'src').mkdir(parents=True)
    (proj/'meta.json').write_text('{"name": "x"}'); (proj/'important.txt').write_text('precious'); (proj/'src'/'main.py').write_text('code')
    before = tree(proj)
    rc, out, err = cli('index', assets/'A', '--index', proj, '--backbone', assets/'bb', '--iters', '2')
    assert rc == 1 and str(proj) in one_line(err) and 'not a saved mao_nb index' in err
    assert tree(proj) == before and not (tmp_path/'.proj.work').exists()   # refused before any work
    from mao_nb.index import GalleryIndex, GalleryIndexError
    with pytest.raises(GalleryIndexError, match='holds no saved GalleryIndex'): GalleryIndex.build(np.eye(4), list('abcd')).save(proj)
    assert tree(proj) == before


def test_1_reindexing_keeps_the_users_files_in_the_index_folder(assets, tmp_path):
    index_of(assets, assets/'A', tmp_path/'idx'); (tmp_path/'idx'/'NOTES.md').write_text('mine')
    index_of(assets, assets/'B', tmp_path/'idx')
    assert (tmp_path/'idx'/'NOTES.md').read_text() == 'mine'


# 2 -------------------------------------------------------------------------------------------------------------------
def test_2_cache_prune_never_deletes_a_folder_that_is_not_a_cache(tmp_path):
    photos = tmp_path/'photos'; (photos/'2023').mkdir(parents=True)
    (photos/'2023'/'202301.json').write_text('{"album": 1}'); (photos/'2023'/'202301.npz').write_bytes(b'x'); (photos/'a.jpg').write_bytes(b'y')
    before = tree(photos)
    for extra in ([], ['--older-than', '0']):
        rc, out, err = cli('cache', 'prune', photos, *extra)
        assert rc == 1 and 'not a folder of mao_nb' in one_line(err)
    rc, out, err = cli('cache', 'list', photos); assert rc == 1
    assert tree(photos) == before


def test_2_a_corrupt_manifest_leaves_the_work_folder_alone(assets, tmp_path):
    index_of(assets, assets/'A', tmp_path/'idx')
    work = tmp_path/'.idx.work'; victim = next(d for d in work.iterdir() if d.is_dir())
    (victim/'manifest.json').write_text('{"files": ')
    before = tree(victim)
    rc, out, err = cli('cache', 'prune', tmp_path/'idx', '--older-than', '0'); assert rc == 0, err
    assert tree(victim) == before
    rc, out, err = cli('cache', 'list', tmp_path/'idx'); assert rc == 0 and 'unreadable manifest' in out


# 3 -------------------------------------------------------------------------------------------------------------------
def test_3_otsu_on_a_range_too_small_for_its_bins():
    from skimage.filters import threshold_otsu
    from mao_nb.masks import otsu_or_max
    v = np.array([1, 1, np.nextafter(np.float32(1), np.float32(2))], np.float32)  # distances in a 5x1-pixel box
    with pytest.raises(ValueError, match='Too many bins'): threshold_otsu(v)        # what the colour masker called
    assert otsu_or_max(v) == pytest.approx(1.0)
    assert 1 <= otsu_or_max(np.array([0., 1, 5, 6])) + 0.01 < 5  # splits {0, 1} from {5, 6}


def test_3_an_image_one_pixel_tall_is_indexed(assets, tmp_path):
    f = tmp_path/'photos'; shutil.copytree(assets/'A', f)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1, 80, 3), dtype=np.uint8)).save(f/'strip.png')
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 1, 3), dtype=np.uint8)).save(f/'column.png')
    out = index_of(assets, f, tmp_path/'idx')
    assert 'index of 8 images' in out


def _fail_on(monkeypatch, name: str):
    "Make the detector raise on the image called `name` (as a stage would on a file that breaks it)."
    import mao_nb.pipeline as P
    real = P.detect
    def detect(records, *a, **k):
        if any(Path(str(r.path)).name == name for r in records): raise RuntimeError('Too many bins for data range (simulated)')
        return real(records, *a, **k)
    monkeypatch.setattr(P, 'detect', detect)


def test_3_one_image_that_fails_is_named_and_lenient_skips_it(assets, tmp_path, monkeypatch):
    f = tmp_path/'photos'; shutil.copytree(assets/'A', f); _fail_on(monkeypatch, 'img03.png')
    for chunk in ('4', '1'):  # a chunk of several images, and a chunk of the failing image alone
        rc, out, err = cli('index', f, '--index', tmp_path/'idx', '--backbone', assets/'bb', '--iters', '2', '--chunk', chunk)
        assert rc == 1 and 'img03.png' in one_line(err) and '--lenient' in err
    rc, out, err = cli('index', f, '--index', tmp_path/'idx', '--backbone', assets/'bb', '--iters', '2', '--chunk', '4', '--lenient')
    assert rc == 0, err
    assert 'index of 5 images' in out and '1 failed' in out and 'img03.png' in err and 'Too many bins' in err
    from mao_nb.index import GalleryIndex
    g = GalleryIndex.load(tmp_path/'idx')
    assert sorted(g.image_ids) == [f'img{i:02d}.png' for i in range(6) if i != 3]
    assert Path(g.paths['img04.png']).resolve() == (f/'img04.png').resolve()


def test_11_nan_vectors_are_that_images_failure(assets, tmp_path, monkeypatch):
    import mao_nb.pipeline as P
    real = P.describe
    def describe(bb, records, method, *a, **k):
        V, own = real(bb, records, method, *a, **k)
        V[[i for i, r in enumerate(records) if r.image_id == 'img02.png']] = np.nan
        return V, own
    monkeypatch.setattr(P, 'describe', describe)
    rc, out, err = cli('index', assets/'A', '--index', tmp_path/'idx', '--backbone', assets/'bb', '--iters', '2')
    assert rc == 1 and 'img02.png' in one_line(err) and 'non-finite' in err
    rc, out, err = cli('index', assets/'A', '--index', tmp_path/'idx', '--backbone', assets/'bb', '--iters', '2', '--lenient')
    assert rc == 0 and 'index of 5 images' in out and 'img02.png' in err


# 4 -------------------------------------------------------------------------------------------------------------------
def test_4_huge_crops_are_cut_from_a_window_and_match_the_full_resolution_crop(monkeypatch):
    "A crop whose window exceeds `MAX_WINDOW_PIXELS` is block-averaged first: the same picture, up to rounding."
    import mao_nb.crops as C
    rng = np.random.default_rng(0); H, W = 600, 800
    yy, xx = np.mgrid[:H, :W]
    img = np.stack([120 + 60 * np.sin(xx / 40), 110 + 50 * np.cos(yy / 35), 100 + 0 * xx], -1).astype(np.uint8)
    boxes = np.array([[50, 40, 750, 580], [300, 200, 340, 230]], np.float32)
    masks = np.zeros((2, H, W), bool); masks[0, 100:500, 100:700] = True; masks[1, 205:225, 305:335] = True
    ref = C.crop_objects(img, boxes, masks, size=64, out_dtype=torch_float())
    monkeypatch.setattr(C, 'MAX_WINDOW_PIXELS', 10_000)   # the big box's window (about 850 x 850) is now 'huge'
    got = C.crop_objects(img, boxes, masks, size=64, out_dtype=torch_float())
    assert (got[0] - ref[0]).abs().max() < 0.02 and (got[1] - ref[1]).abs().mean() < 0.01    # the big crop: averaged first
    assert (got[1] - ref[1]).abs().max() < 0.25                                             # (mask edges move by a fraction of a pixel)
    assert (got[0][1] - ref[0][1]).abs().max() == 0                                         # the small crop: unchanged


def torch_float():
    import torch; return torch.float32


def test_4_object_masks_one_at_a_time_equal_the_stacked_masks():
    "The memory-lean mask route (`object_rles`) gives the masks `segment_objects` gives."
    from mao_nb.core import rle_decode
    from mao_nb.haystack import load_benchmark
    from mao_nb.masks import object_rles, segment_objects
    from mao_nb.proposals import offline_proposals
    for rec in load_benchmark('tiny', progress=False)['test'].gallery[:3]:
        img = rec.load(); b, s, m = offline_proposals(img); b2, s2, r = offline_proposals(img, as_rle=True)
        np.testing.assert_array_equal(b, b2); np.testing.assert_array_equal(np.stack(m), np.stack([rle_decode(x) for x in r]))
        for route in ('colour', 'box'):
            full = segment_objects(img, b, route)
            np.testing.assert_array_equal(full, np.stack([rle_decode(x) for x in object_rles(img, b, route)]))


# 5 -------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('during', ['objects-', 'mao-'])  # the forked detector workers, then Stage B in the main process
def test_5_ctrl_c_is_one_line_and_exit_130(assets, tmp_path, during):
    f = tmp_path/'photos'; shutil.copytree(assets/'A', f); shutil.copytree(assets/'B', f/'more')
    p = subprocess.Popen([str(BIN/'mao_nb'), 'index', str(f), '--index', str(tmp_path/'idx'), '--backbone', str(assets/'bb'),
                          '--iters', '400', '--chunk', '2'], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    work, t0 = tmp_path/'.idx.work', time.time()
    while p.poll() is None and time.time() - t0 < 300 and not any(d.name.startswith(during) for d in (work.iterdir() if work.exists() else [])):
        time.sleep(0.05)
    time.sleep(0.3)
    assert p.poll() is None, 'the run ended before Ctrl-C'
    os.killpg(p.pid, signal.SIGINT)   # what a terminal's Ctrl-C does: the whole foreground group, workers included
    out, err = p.communicate(timeout=120); err = err.decode()
    assert p.returncode == 130 and 'interrupted; finished work is kept' in one_line(err)


# 6 -------------------------------------------------------------------------------------------------------------------
def test_6_search_keeps_queries_that_share_a_file_name(assets, tmp_path):
    index_of(assets, assets/'A', tmp_path/'idx')
    (tmp_path/'a').mkdir(); (tmp_path/'b').mkdir()
    shutil.copy(assets/'query.png', tmp_path/'a'/'x.png'); shutil.copy(assets/'A'/'img00.png', tmp_path/'b'/'x.png')
    rc, out, err = cli('search', tmp_path/'idx', tmp_path/'a'/'x.png', tmp_path/'b'/'x.png', '--backbone', assets/'bb', '-k', '2', '--json')
    assert rc == 0, err
    res = json.loads(out[out.index('{'):])
    assert sorted(res) == sorted([str(tmp_path/'a'/'x.png'), str(tmp_path/'b'/'x.png')])
    assert all(len(h) == 2 for h in res.values()) and res[str(tmp_path/'a'/'x.png')] != res[str(tmp_path/'b'/'x.png')]


# 7 -------------------------------------------------------------------------------------------------------------------
def test_7_a_failed_index_write_is_one_line_naming_the_file(assets, tmp_path, monkeypatch):
    import faiss
    def full(index, path): Path(path).write_bytes(b'\0' * 10); raise RuntimeError("Error in void faiss::write_index: Error: 'ret == (n)' failed: write error")
    monkeypatch.setattr(faiss, 'write_index', full)
    rc, out, err = cli('index', assets/'A', '--index', tmp_path/'idx', '--backbone', assets/'bb', '--iters', '2')
    line = one_line(err); assert rc == 1 and 'index.faiss' in line and 'write error' in line
    assert not [p for p in (tmp_path/'idx').rglob('*') if p.is_file() and p.name != '.lock']   # nothing half-made left


def test_7_a_failed_file_write_names_the_file(tmp_path, monkeypatch):
    from mao_nb.core import atomic_write
    real = os.fsync
    def fsync(fd): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(OSError, match='could not write .*chunk.npz: No space left'): atomic_write(tmp_path/'chunk.npz', b'x')
    monkeypatch.setattr(os, 'fsync', real)
    assert list(tmp_path.iterdir()) == []


# 8 -------------------------------------------------------------------------------------------------------------------
def test_8_readers_never_see_a_half_made_index(tmp_path):
    from mao_nb.index import GalleryIndex
    a, b = GalleryIndex.build(np.eye(8, dtype=np.float32), list('abcdefgh')), GalleryIndex.build(np.eye(8, dtype=np.float32)[:4], list('wxyz'))
    a.save(tmp_path/'idx'); stop, errors, seen = threading.Event(), [], set()
    def write():
        for i in range(40): (a if i % 2 else b).save(tmp_path/'idx')
        stop.set()
    def read():
        while not stop.is_set():
            try: seen.add(GalleryIndex.load(tmp_path/'idx').n_images)
            except Exception as e: errors.append(repr(e))
    ts = [threading.Thread(target=write), threading.Thread(target=write), threading.Thread(target=read)]
    [t.start() for t in ts]; [t.join(300) for t in ts]
    assert not errors, errors[:3]
    assert seen <= {4, 8} and seen
    assert len([d for d in (tmp_path/'idx').iterdir() if d.is_dir()]) == 1 and [p.name for p in tmp_path.iterdir()] == ['idx']


# 11 ------------------------------------------------------------------------------------------------------------------
def test_11_an_index_faiss_from_another_save_is_refused(tmp_path):
    from mao_nb.index import GalleryIndex, GalleryIndexError, index_files
    rng = np.random.default_rng(0)
    GalleryIndex.build(rng.standard_normal((5, 8)), list('abcde')).save(tmp_path/'one')
    GalleryIndex.build(rng.standard_normal((5, 8)), list('abcde')).save(tmp_path/'two')
    shutil.copy(index_files(tmp_path/'two')/'index.faiss', index_files(tmp_path/'one')/'index.faiss')
    with pytest.raises(GalleryIndexError, match='checksum differs'): GalleryIndex.load(tmp_path/'one')


# 12 ------------------------------------------------------------------------------------------------------------------
def test_12_search_from_another_folder_prints_paths_that_resolve(assets, tmp_path):
    (tmp_path/'here').mkdir(); shutil.copytree(assets/'A', tmp_path/'here'/'photos')
    run = lambda cwd, *a: subprocess.run([str(BIN/'mao_nb'), *map(str, a)], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    r = run(tmp_path/'here', 'index', 'photos', '--index', 'idx', '--backbone', assets/'bb', '--iters', '2'); assert r.returncode == 0, r.stderr[-2000:]
    (tmp_path/'else').mkdir()
    r = run(tmp_path/'else', 'search', tmp_path/'here'/'idx', assets/'query.png', '--backbone', assets/'bb', '-k', '3', '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    hits = next(iter(json.loads(r.stdout[r.stdout.index('{'):]).values()))
    assert len(hits) == 3 and all(Path(h['path']).is_file() for h in hits)


def test_12_saved_index_follows_the_umask(tmp_path):
    from mao_nb.index import GalleryIndex, index_files
    old = os.umask(0o022)
    try: GalleryIndex.build(np.eye(4), list('abcd')).save(tmp_path/'idx')
    finally: os.umask(old)
    v = index_files(tmp_path/'idx')
    assert (v.stat().st_mode & 0o777) == 0o755 and ((v/'index.faiss').stat().st_mode & 0o777) == 0o644


def test_12_links_that_loop_and_folders_named_like_images_are_counted(tmp_path):
    from mao_nb.loaders import load_image_folder
    f = tmp_path/'photos'; f.mkdir(); Image.new('RGB', (20, 10)).save(f/'ok.png')
    (f/'album.png').mkdir(); os.symlink('loop2.jpg', f/'loop1.jpg'); os.symlink('loop1.jpg', f/'loop2.jpg'); os.symlink('nowhere', f/'gone.png')
    with pytest.warns(UserWarning, match='skipped 4 files'): recs, skips = load_image_folder(f, return_skips=True)
    assert [r.image_id for r in recs] == ['ok.png'] and len(skips) == 4 and 'album.png' in repr(skips)


# 9 -------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def coco(tmp_path):
    from coco_fixture import write_coco_fixture as _write_coco_fixture
    fx = _write_coco_fixture(tmp_path/'coco', n_images=4, n_instances=3)
    return fx, json.loads(fx['ann_json'].read_text())


@pytest.mark.parametrize('name, edit, says', [
    ('annotations a dict', lambda d: d.update(annotations={'a': 1}), "needs 'images' and 'annotations' lists"),
    ('annotations of ints', lambda d: d.update(annotations=[1, 2]), 'annotations[0] must be an object'),
    ('images of strings', lambda d: d.update(images=['a.png']), 'images[0] must be an object'),
    ('categories of ints', lambda d: d.update(categories=[1, 2]), 'categories[0] must be an object'),
    ('an image id that is a list', lambda d: d['images'][0].update(id=[1]), 'an id must be an integer or a string'),
    ('a 400-digit bbox number', lambda d: d['annotations'][0].update(bbox=[int('9' * 400), 0, 5, 5]), 'too large'),
    ('every instance id negative', lambda d: [a.update(instance_id=-1) for a in d['annotations']], 'no queries'),
    ('soir_labels of strings', lambda d: [im.update(soir_labels=['x']) for im in d['images']], "'soir_labels' must be a list of integer"),
])
def test_9_malformed_coco_is_one_error_naming_the_file(coco, tmp_path, name, edit, says):
    from mao_nb.data import DatasetError
    from mao_nb.loaders import load_coco_soir
    fx, d = coco; edit(d); j = tmp_path/'bad.json'; j.write_text(json.dumps(d))
    with pytest.raises(DatasetError, match=re.escape(says)) as e: load_coco_soir(j, fx['image_root'])
    assert 'bad.json' in str(e.value) or 'image ' in str(e.value)
    rc, out, err = cli('eval', '--format', 'coco', '--root', j, '--image-root', fx['image_root'], '--backbone', 'default', '--methods', 'global')
    assert rc == 1 and says.split("'")[0] in one_line(err)


def test_9_deeply_nested_json_is_one_error(tmp_path):
    from mao_nb.data import DatasetError
    from mao_nb.loaders import load_coco_soir
    j = tmp_path/'deep.json'; j.write_text('[' * 200_000 + ']' * 200_000)
    with pytest.raises(DatasetError, match='nested too deeply'): load_coco_soir(j)


# 10 ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def saved_bb(tmp_path_factory):
    from mao_nb.backbones import backbone_from_config
    t = tmp_path_factory.mktemp('bb'); backbone_from_config('dinov2', image_size=32, patch_size=8).save(t/'good'); return t/'good'


def _truncated(p): f = p/'model.safetensors'; b = f.read_bytes(); f.write_bytes(b[:len(b) // 2])
def _too_wide(p): c = json.loads((p/'config.json').read_text()); c['hidden_size'] = 128; (p/'config.json').write_text(json.dumps(c))
def _bad_config(p): (p/'config.json').write_text('{"model_type": ')
def _pickled(p):
    import torch
    (p/'model.safetensors').unlink(); torch.save({'x': _Evil()}, p/'pytorch_model.bin')


class _Evil:
    def __reduce__(self): return (print, ('PWNED',))


@pytest.mark.parametrize('edit, says', [(_truncated, 'weights cannot be loaded (SafetensorError'), (_too_wide, 'weights cannot be loaded'),
                                        (_pickled, 'refused'), (_bad_config, 'config.json cannot be read')])
def test_10_tampered_backbone_folder_is_one_line(saved_bb, tmp_path, edit, says):
    bad = tmp_path/'bb'; shutil.copytree(saved_bb, bad); edit(bad)
    rc, out, err = cli('search', tmp_path/'nothing', tmp_path/'q.png', '--backbone', bad)
    assert rc == 1 and says in one_line(err) and str(bad) in err and 'PWNED' not in out and 'cache' not in err


def test_10_adapter_record_without_family_is_one_line(saved_bb, tmp_path):
    from mao_nb.backbones import load_backbone
    from mao_nb.stage_a import load_adapter
    ad = tmp_path/'ad'; (ad/'adapter').mkdir(parents=True); (ad/'adapter'/'adapter_config.json').write_text('{}')
    (ad/'stage_a.json').write_text('{"embed_dim": 32}')
    with pytest.raises(ValueError, match="needs 'family'"): load_adapter(load_backbone(saved_bb), ad)
