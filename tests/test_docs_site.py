"""The documentation site (`make docs`: nbdev's processors + Sphinx with MyST-NB), checked as a reader sees it.

The site is built from a copy of this project in a temporary folder, to which the test adds a section of two
fixture notebooks: a picture drawn as a plotly image trace, stored the way `make run-nbs` stores figures, and a
formula. Every page is then opened in headless Chromium, driven through the DevTools protocol, and the test
asserts: every notebook has a page; no page logs a JavaScript or console error or requests anything but local
files; every link resolves, anchors included; the sidebar and the Next/Previous links follow `nbs/sidebar.yml`;
an API entry (`load_image`, with its docments) is rendered; **every picture of every figure is drawn** (the
image traces a figure holds = the `<image>` elements plotly.js drew with a picture in them); **no formula is
left as TeX** in the visible text. Screenshots of the tutorial, LeGrad and Stage B pages are saved in the
site's `_screenshots/` folder (and copied to `$MAO_NB_SCREENSHOTS` when set).

Chromium is found on the PATH; when missing it is installed with apt-get if the test runs as root;
otherwise the browser checks are skipped with the reason.
"""
import base64, json, os, posixpath, re, shutil, subprocess, time, urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

FIXTURE_DIR = 'zz_fixture_section'  # sorts after any real folder; removed with the temporary copy
BROWSER_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
                 '--disable-component-update', '--disable-sync', '--disable-extensions', '--hide-scrollbars',
                 '--remote-allow-origins=*', '--window-size=1280,1600']
SCREENSHOTS = ('tutorials/01_find_your_needle.html', 'api/10_legrad.html', 'api/15_stage_b.html')


def find_chromium():
    "Path of a Chromium/Chrome binary, installing Debian's chromium when missing and possible (root + apt-get)."
    names = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found or os.geteuid() != 0 or not shutil.which('apt-get'): return found
    try:
        subprocess.run('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium',
                       shell=True, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired: return None
    return shutil.which('chromium')


def page_of(rel: str) -> str: return rel[:-len('.ipynb')] + '.html'


def source_notebooks(nbs: Path) -> list:
    return sorted(p.relative_to(nbs).as_posix() for p in nbs.rglob('*.ipynb')
                  if not any(q.startswith(('_', '.')) for q in p.relative_to(nbs).parts))


def write_fixtures(nbs: Path):
    "A section of two notebooks: a picture as a plotly image trace (with its PNG, as `make run-nbs` stores it), and a formula."
    import numpy as np, plotly.graph_objects as go, plotly.io as pio
    from plotly.subplots import make_subplots
    V4 = nbformat.v4; d = nbs/FIXTURE_DIR; d.mkdir()
    fig = make_subplots(rows=1, cols=2)
    for i in (1, 2): fig.add_trace(go.Image(z=(np.arange(48*64*3).reshape(48, 64, 3) * (7 * i) % 255).astype('uint8')), 1, i)
    fig.add_trace(go.Bar(x=['a', 'b', 'c'], y=[3, 1, 2])); fig.update_layout(width=600, height=300)
    fig = go.Figure(pio.from_json(pio.to_json(fig)))  # image traces as plotly stores them: a PNG data URI in `source`
    data = pio.renderers['plotly_mimetype'].to_mimebundle(fig.to_dict())
    out = V4.new_output('execute_result', data=data, execution_count=1)
    nbformat.write(V4.new_notebook(cells=[V4.new_markdown_cell('# Fixture plot\n\n> Two pictures and a bar chart.'),
        V4.new_markdown_cell('## The figure\n\nThe map $f_l = e \\cdot v_l$; see `mao_nb.core.load_image` and [the next page](02_second.ipynb).\n\n'
                             '$$\\hat v = \\arg\\max_{v} \\sum_i \\mathrm{IoU}(E(v \\cdot v_i), m_i)$$'),
        V4.new_code_cell('fig', outputs=[out])], metadata={'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}}),
        d/'01_plot.ipynb')
    nbformat.write(V4.new_notebook(cells=[V4.new_markdown_cell('# Fixture second\n\n> The second page of the section.'),
        V4.new_code_cell('1 + 1', outputs=[V4.new_output('execute_result', data={'text/plain': '2'}, execution_count=1)])]),
        d/'02_second.ipynb')
    sb = nbs/'sidebar.yml'  # the course lists the fixture section last
    sb.write_text(sb.read_text().rstrip('\n') + f'\n      - section: {FIXTURE_DIR}\n        contents:\n'
                  f'          - {FIXTURE_DIR}/01_plot.ipynb\n          - {FIXTURE_DIR}/02_second.ipynb\n')


class Browser:
    "Headless Chromium driven through the DevTools protocol (websocket-client)."
    def __init__(self, exe: str, profile: Path):
        import websocket
        self.proc = subprocess.Popen([exe, *BROWSER_FLAGS, f'--user-data-dir={profile}', '--remote-debugging-port=0',
                                      'about:blank'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, t0 = profile/'DevToolsActivePort', time.time()
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() - t0 > 30 or self.proc.poll() is not None: raise RuntimeError('chromium did not start')
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        for _ in range(50):
            try: targets = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=5)); break
            except OSError: time.sleep(0.1)
        url = next(t['webSocketDebuggerUrl'] for t in targets if t['type'] == 'page')
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.n, self.events = 0, []
        for m in ('Page.enable', 'Runtime.enable', 'Log.enable', 'Network.enable'): self.send(m)
        self.send('Emulation.setDeviceMetricsOverride', {'width': 1280, 'height': 1600, 'deviceScaleFactor': 1, 'mobile': False})

    def send(self, method, params=None):
        self.n += 1; i = self.n
        self.ws.send(json.dumps({'id': i, 'method': method, 'params': params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == i:
                if 'error' in msg: raise RuntimeError(f'{method}: {msg["error"]}')
                return msg.get('result', {})
            if 'method' in msg: self.events.append(msg)

    def wait_event(self, name, timeout=30):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if any(e['method'] == name for e in self.events): return
            msg = json.loads(self.ws.recv())
            if 'method' in msg: self.events.append(msg)
        raise TimeoutError(name)

    def evaluate(self, js):
        r = self.send('Runtime.evaluate', {'expression': js, 'awaitPromise': True, 'returnByValue': True})
        if 'exceptionDetails' in r: raise RuntimeError(f'evaluate failed: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def open(self, url):
        "Load `url`; return the problems it caused (errors, console errors, non-local requests)."
        self.events.clear()
        self.send('Page.navigate', {'url': url}); self.wait_event('Page.loadEventFired')
        self.evaluate('''new Promise(done => { const t0 = Date.now(); (function wait() {  // figures and pictures drawn (or 15 s)
            const g = [...document.querySelectorAll('.plotly-graph-div')];
            const ready = g.every(d => d._fullLayout && d.querySelector('.main-svg') &&
                d.querySelectorAll('.imagelayer image').length >= (d.data || []).filter(t => t.type === 'image').length);
            if (ready || Date.now() - t0 > 15000) {
                const m = window.MathJax && MathJax.startup && MathJax.startup.promise;  // formulas typeset
                (m ? m.then(() => setTimeout(done, 300)) : setTimeout(done, 300));
            } else setTimeout(wait, 50); })(); })''')
        problems = []
        for e in self.events:
            m, p = e['method'], e['params']
            if m == 'Runtime.exceptionThrown': problems.append(f"JS exception: {p['exceptionDetails'].get('exception', {}).get('description') or p['exceptionDetails'].get('text')}")
            elif m == 'Runtime.consoleAPICalled' and p['type'] in ('error', 'assert'): problems.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}")
            elif m == 'Log.entryAdded' and p['entry']['level'] == 'error': problems.append(f"log error: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif m == 'Network.requestWillBeSent' and not p['request']['url'].startswith(('file:', 'data:', 'about:', 'blob:')):
                problems.append(f"network request: {p['request']['url']}")
        return problems

    def screenshot(self, path: Path, full: bool=False):
        "A PNG of the viewport, or of the whole page (the viewport made as tall as the page, at most 12,000 px)."
        path.parent.mkdir(parents=True, exist_ok=True)
        if full:
            h = min(int(self.evaluate('document.documentElement.scrollHeight')), 12000)
            self.send('Emulation.setDeviceMetricsOverride', {'width': 1280, 'height': h, 'deviceScaleFactor': 1, 'mobile': False})
            self.evaluate('new Promise(done => setTimeout(done, 1500))')  # plotly redraws at the new size
        try: path.write_bytes(base64.b64decode(self.send('Page.captureScreenshot', {'format': 'png'})['data']))
        finally:
            if full: self.send('Emulation.setDeviceMetricsOverride', {'width': 1280, 'height': 1600, 'deviceScaleFactor': 1, 'mobile': False})

    def close(self):
        try: self.ws.close()
        finally:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill()


PAGE_INFO_JS = r"""(() => {
  const art = document.querySelector('article.bd-article');
  const text = s => [...document.querySelectorAll(s)].map(e => e.innerText.trim());
  const api = document.getElementById('load-image') || document.getElementById('load_image');
  const prose = art.cloneNode(true);  // the visible text a reader reads: code, drawn math and figures left out
  prose.querySelectorAll('pre, code, mjx-container, .cell_output, script, style').forEach(x => x.remove());
  const figs = [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
    traces: (d.data || []).filter(t => t.type === 'image').length,
    drawn: [...d.querySelectorAll('.imagelayer image')].filter(im => (im.getAttribute('href') || im.getAttribute('xlink:href') || '').startsWith('data:image/')
                                                                 && im.getBBox().width > 0).length,
    svg: !!d.querySelector('.main-svg')}));
  return {
    title: document.title,
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    sidebar: [...document.querySelectorAll('nav.bd-docs-nav a.reference')].map(a => [a.getAttribute('href'), a.innerText.trim(),
                                                                                  a.parentElement.classList.contains('current')]),
    sections: text('nav.bd-docs-nav p.caption'),
    prev: [...document.querySelectorAll('.prev-next-area a.left-prev')].map(a => a.getAttribute('href')),
    next: [...document.querySelectorAll('.prev-next-area a.right-next')].map(a => a.getAttribute('href')),
    h1: text('article h1').map(t => t.replace(/#$/, '').trim()),
    inputs: text('.cell_input pre'),
    folded: document.querySelectorAll('.cell.tag_hide-input details').length,
    prose: prose.innerText,
    math: document.querySelectorAll('mjx-container').length,
    figs: figs,
    api: api ? api.closest('section').innerText : null,
    search: !!document.querySelector('form.bd-search input, input[name="q"]'),
  };
})()"""


_FAILED = []

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "Build the site from a copy of the project (plus the fixture section); return (site folder, nbs folder)."
    from mao_nb.dev.docs import build_docs
    if _FAILED: pytest.fail(f'the docs site did not build (see the first error): {_FAILED[0]}', pytrace=False)
    base = tmp_path_factory.mktemp('docs_site'); proj = base/'proj'
    shutil.copytree(ROOT/'nbs', proj/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc'))
    shutil.copy(ROOT/'settings.ini', proj/'settings.ini')
    shutil.copytree(ROOT/'mao_nb', proj/'mao_nb', ignore=shutil.ignore_patterns('__pycache__'))  # the API's [source] pages
    write_fixtures(proj/'nbs')
    try: dest = build_docs(base/'site', root=proj, quiet=True)
    except Exception as e: _FAILED.append(str(e)[:300]); raise  # build once: later tests fail fast
    return dest, proj/'nbs'


@pytest.fixture(scope='module')
def visited(site, tmp_path_factory):
    "Every page opened in Chromium: {page: (problems, info)}; screenshots taken on the way."
    exe = find_chromium()
    if not exe: pytest.skip('no Chromium on the PATH and it cannot be installed here (not root or no apt-get): browser checks skipped')
    dest, nbs = site
    b = Browser(exe, tmp_path_factory.mktemp('chromium_profile'))
    try:
        out = {}
        for rel in ['index.html'] + [page_of(r) for r in source_notebooks(nbs) if r != 'index.ipynb']:
            problems = b.open((dest/rel).as_uri())
            out[rel] = (problems, b.evaluate(PAGE_INFO_JS))
            if rel in SCREENSHOTS: b.screenshot(dest/'_screenshots'/(rel.replace('/', '_')[:-5] + '.png'), full=True)
    finally: b.close()
    if os.environ.get('MAO_NB_SCREENSHOTS'):
        shutil.copytree(dest/'_screenshots', os.environ['MAO_NB_SCREENSHOTS'], dirs_exist_ok=True)
    return out


def test_every_notebook_has_a_page(site):
    dest, nbs = site
    missing = [page_of(r) for r in source_notebooks(nbs) if not (dest/page_of(r)).is_file()]
    assert not missing, f'notebooks without a page: {missing}'
    assert (dest/'_static'/'plotly.min.js').stat().st_size > 1_000_000
    assert (dest/'_static'/'mathjax'/'tex-chtml.js').is_file(), 'MathJax must be served from the site'
    assert (dest/'_images').is_dir() or 'pipeline.svg' in (dest/'index.html').read_text(), 'images referenced by the notebooks must be copied'


def test_no_cdn_in_pages(site):
    "No page loads anything from the network (scripts, styles, images, fonts): the site works offline."
    dest, _ = site
    for f in dest.rglob('*.html'):
        if '_source' in f.parts: continue
        s = f.read_text()
        remote = re.findall(r'<(?:script|link|img|iframe)\b[^>]*(?:src|href)="((?:https?:)?//[^"]+)"', s)
        assert not remote, f'{f.relative_to(dest)} loads {remote}'


def test_pages_load_without_errors(visited):
    bad = {p: probs for p, (probs, _) in visited.items() if probs}
    assert not bad, f'pages with errors or network requests: {json.dumps(bad, indent=1)[:4000]}'


def test_every_link_resolves(site, visited):
    "Sidebar, prev/next, links between notebooks, doc links to API entries and source links: to an existing file and anchor."
    dest, nbs = site
    ids = {p: set(info['ids']) for p, (_, info) in visited.items()}
    broken = []
    for page, (_, info) in visited.items():
        for href in info['links']:
            if re.match(r'^[a-z][\w+.-]*:|^//', href): continue  # external: none should be needed, but not followed
            path, _, frag = href.partition('#')
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path)) if path else page
            if not (dest/target).is_file(): broken.append(f'{page}: {href} (no file)')
            elif frag and target.endswith('.html'):
                known = ids.get(target)
                if known is None: known = set(re.findall(r'\bid="([^"]+)"', (dest/target).read_text()))
                if frag not in known: broken.append(f'{page}: {href} (no anchor)')
    assert not broken, f'{len(broken)} broken links:\n' + '\n'.join(broken[:60])
    fixture = visited[f'{FIXTURE_DIR}/01_plot.html'][1]['links']
    assert '../api/00_core.html#load-image' in fixture or '../api/00_core.html#load_image' in fixture, fixture  # the doc link
    assert '02_second.html' in fixture, fixture


def test_sidebar_order_sections_and_prev_next(site, visited):
    import yaml
    dest, nbs = site
    listed = []
    def walk(xs):
        for x in xs or []:
            if isinstance(x, str): listed.append(x)
            else: walk(x.get('contents'))
    walk(yaml.safe_load((nbs/'sidebar.yml').read_text())['website']['sidebar']['contents'])
    order = [page_of(r) for r in listed]
    assert order[1].startswith('tutorials/'), order[:3]  # the tutorials open the course
    info = visited['index.html'][1]
    hrefs = ['index.html' if h == '#' else h for h, _, _ in info['sidebar']]  # a page's own entry links to '#'
    assert hrefs == order, f'sidebar order {hrefs} != the course {order}'
    assert [t.lower() for t in info['sections']] == ['tutorials', 'api', 'explanations', 'developers', FIXTURE_DIR], info['sections']
    titles = {('index.html' if h == '#' else h): t for h, t, _ in info['sidebar']}
    assert titles[f'{FIXTURE_DIR}/01_plot.html'] == 'Fixture plot' and titles['api/00_core.html'] == 'Core'
    for i, page in enumerate(order):  # Previous/Next follow the course; the page's own entry is the current one
        pinfo = visited[page][1]; here = posixpath.dirname(page)
        absolute = lambda l: [posixpath.normpath(posixpath.join(here, h)) for h in l]
        assert absolute(pinfo['prev']) == order[max(i-1, 0):i], (page, pinfo['prev'])
        assert absolute(pinfo['next']) == order[i+1:i+2], (page, pinfo['next'])
        assert [page if h == '#' else posixpath.normpath(posixpath.join(here, h)) for h, _, cur in pinfo['sidebar'] if cur] == [page], page
        assert pinfo['h1'] == [titles[page]], (page, pinfo['h1'])
        assert pinfo['search'], f'{page}: no search box'


def test_api_entry_rendered(visited):
    "The show_doc block of `load_image`: heading, signature with its docments, docstring."
    from fastcore.docments import docments
    from mao_nb.core import load_image
    info = visited['api/00_core.html'][1]
    assert info['api'], 'no element with id load-image on api/00_core.html'
    assert 'def load_image(' in info['api'] and load_image.__doc__.split('`')[0].strip() in info['api']
    for name, doc in docments(load_image).items():
        if doc: assert doc in info['api'], f'docment of {name!r} missing: {doc!r}'


def test_exported_source_is_folded(site, visited):
    "nbdev shows the source of an `#| exports` cell folded under 'Exported source': here, a closed <details> per such cell."
    dest, nbs = site
    for rel in ('api/10_legrad.ipynb', 'api/15_stage_b.ipynb'):
        n = sum(c.cell_type == 'code' and c.source.lstrip().startswith('#| exports\n') for c in nbformat.read(nbs/rel, as_version=4).cells)
        assert n > 0 and visited[page_of(rel)][1]['folded'] == n, (rel, n, visited[page_of(rel)][1]['folded'])


def test_reader_sees_no_directives_or_quarto_markup(visited):
    for page, (_, info) in visited.items():
        assert not [s for s in info['inputs'] if s.lstrip().startswith('#|')], f'{page}: nbdev directives shown in code'
        assert not [s for s in info['inputs'] if 'from fastcore.test import' in s], f'{page}: a hidden cell is shown'

        assert not re.search(r'\]\([^)]*\)\{|^:::|^---\s*$|output-file:', info['prose'], flags=re.M), f'{page}: Quarto markup left in the text'


TEX = re.compile(r'\$[^$\n]{1,200}\$|\\(?:frac|hat|mathrm|sum|arg|cdot|operatorname|mathbf|tfrac|lambda|alpha)\b')

def test_no_formula_left_as_tex(visited):
    "MathJax draws every formula: none of the visible text (code left out) is TeX."
    raw = {p: TEX.findall(info['prose'])[:3] for p, (_, info) in visited.items() if TEX.search(info['prose'])}
    assert not raw, f'raw TeX in the visible text: {raw}'
    assert visited[f'{FIXTURE_DIR}/01_plot.html'][1]['math'] == 2  # the fixture's inline and display formulas
    assert visited['api/15_stage_b.html'][1]['math'] > 0 and visited['api/10_legrad.html'][1]['math'] > 0


def test_every_picture_is_drawn(site, visited):
    """Each figure of each page is drawn, with every picture it holds: the image traces in a figure's data = the
    `<image>` elements with a picture that plotly.js drew for it. And each page has as many figures as its notebook."""
    dest, nbs = site
    fx = visited[f'{FIXTURE_DIR}/01_plot.html'][1]['figs']
    assert fx == [{'traces': 2, 'drawn': 2, 'svg': True}], fx
    blank, counts = [], []
    for rel in source_notebooks(nbs):
        nb = nbformat.read(nbs/rel, as_version=4)
        n = sum('application/vnd.plotly.v1+json' in o.get('data', {}) for c in nb.cells for o in c.get('outputs', []))
        figs = visited[page_of(rel)][1]['figs']
        if len(figs) != n: counts.append(f'{rel}: {n} figures saved, {len(figs)} on the page')
        blank += [f'{rel} figure {i}: {f}' for i, f in enumerate(figs) if not f['svg'] or f['drawn'] != f['traces']]
    assert not counts, counts
    assert not blank, 'figures whose pictures are not drawn:\n' + '\n'.join(blank)
    assert sum(f['traces'] for p in SCREENSHOTS for f in visited[p][1]['figs']) > 10  # the pages that teach with pictures have them
