"""The course reads in order: the hand-written sidebar lists every notebook once (tutorials first), every notebook opens
with its title, subtitle and what it teaches, ends with a "Next" link to the following page, and the API notebooks
use nothing that a later notebook defines. No file points users to a document they do not have."""
import json, posixpath, re, subprocess
from pathlib import Path
import pytest, yaml
from conftest import ROOT, notebooks

NBS = ROOT/'nbs'


def sidebar() -> list:
    "Notebook paths (relative to nbs/) in the order of nbs/sidebar.yml, and the section titles."
    items, sections = [], []
    def walk(xs):
        for x in xs or []:
            if isinstance(x, str): items.append(x)
            else:
                if x.get('section'): sections.append(x['section'])
                if x.get('href'): items.append(x['href'])
                walk(x.get('contents'))
    walk(yaml.safe_load((NBS/'sidebar.yml').read_text())['website']['sidebar']['contents'])
    return items, sections


def cells(rel: str, kind: str) -> list:
    return [''.join(c['source']) for c in json.loads((NBS/rel).read_text())['cells'] if c['cell_type'] == kind]


ORDER, SECTIONS = sidebar()


def test_sidebar_lists_every_notebook_once_in_sections():
    assert len(ORDER) == len(set(ORDER)), [p for p in ORDER if ORDER.count(p) > 1]
    found = sorted(p.relative_to(NBS).as_posix() for p in notebooks())
    assert sorted(ORDER) == found, f'in the sidebar but missing: {sorted(set(ORDER) - set(found))}; not in the sidebar: {sorted(set(found) - set(ORDER))}'
    assert ORDER[0] == 'index.ipynb' and SECTIONS == ['Tutorials', 'API', 'Explanations', 'Developers'], (ORDER[0], SECTIONS)
    folders = [p.split('/')[0] for p in ORDER[1:]]
    assert folders == sorted(folders, key=['tutorials', 'api', 'explanations', 'dev'].index), 'sections out of order'
    for f in ('api', 'tutorials', 'explanations', 'dev'):  # numbered in reading order inside each folder
        names = [p.split('/')[1] for p in ORDER if p.startswith(f + '/')]
        assert names == sorted(names) and all(re.match(r'\d\d[a-z]?_', n) for n in names), (f, names)
    assert 'custom_sidebar = True' in (ROOT/'settings.ini').read_text()


@pytest.mark.parametrize('rel', ORDER[1:])
def test_opens_with_what_it_teaches(rel):
    md = cells(rel, 'markdown')
    assert re.match(r'# \S.*\n\n> \S', md[0]), f'{rel}: the first cell must be "# Title" then "> subtitle"'
    assert md[1].startswith('**What you will learn**'), f'{rel}: the second markdown cell must start with **What you will learn**'
    assert len(re.findall(r'^- \S', md[1], flags=re.M)) >= 1, f'{rel}: what it teaches, as a list'


@pytest.mark.parametrize('i', range(len(ORDER)))
def test_next_link_follows_the_sidebar(i):
    rel = ORDER[i]; last = cells(rel, 'markdown')[-1].strip().splitlines()[-1]
    if i == len(ORDER) - 1:
        assert not last.startswith('Next:'), f'{rel} is the last page: it has no Next'
        return
    m = re.match(r'Next: \[[^\]]+\]\(([^)]+\.ipynb)\)', last)
    assert m, f'{rel}: the last line must be "Next: [title](next.ipynb) ..."; found {last[:120]!r}'
    target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), m.group(1)))
    assert target == ORDER[i + 1], f'{rel}: Next goes to {target}, the sidebar says {ORDER[i + 1]}'


def _module_of(rel: str) -> str|None:
    m = re.search(r'^#\|\s*default_exp\s+(\S+)', '\n'.join(cells(rel, 'code')), flags=re.M)
    return m.group(1) if m else None


def test_api_notebooks_use_nothing_that_comes_later():
    api = [r for r in ORDER if r.startswith('api/')]
    mods = {_module_of(r): k for k, r in enumerate(api)}
    assert None not in mods, 'every API notebook exports a module'
    for k, rel in enumerate(api):
        used = set(re.findall(r'^\s*(?:from|import)\s+mao_nb\.(\w+)', '\n'.join(cells(rel, 'code')), flags=re.M))
        later = sorted(u for u in used if mods.get(u, -1) > k)
        outside = sorted(u for u in used if u not in mods and (rel, u) != ('api/21_cli.ipynb', 'dev'))  # `mao_nb docs` builds the site
        assert not outside, f'{rel} uses {outside}, defined outside the API notebooks (explanations, dev)'
        assert not later, f'{rel} uses {later}, defined by later notebooks'


def test_no_file_points_to_documents_users_do_not_have():
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = re.compile(r'METHOD\.md|paper-summary|ENVIRONMENT\.md|STYLE\.md|\.\./shared/')
    hits = [f for f in files if f.endswith(('.ipynb', '.md', '.py', '.yml', '.ini', '.sh', 'Makefile')) and f != 'tests/test_course.py'
            and bad.search((ROOT/f).read_text(errors='ignore'))]
    assert not hits, f'these files mention documents that users do not have: {hits}'
