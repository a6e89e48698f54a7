"""The offline documentation site (`mao_nb docs`), checked in a real browser.

The site is built (offline route, no Quarto) from a copy of this project in a temporary folder, to
which the test adds a sub-folder of two fixture notebooks, one holding a plotly figure stored the way
`make run-nbs` stores figures. Every page is then opened in headless Chromium, driven through the
DevTools protocol, and the test asserts: every notebook has a page; no page logs a JavaScript or
console error or requests anything but local files; every link between pages (sidebar, prev/next,
doc links) resolves, anchors included; an API entry (`load_image`, with its docments) is rendered;
plotly figures are drawn by the local plotly.js. Screenshots of three pages are saved in the site's
`_screenshots/` folder (and copied to `$MAO_NB_SCREENSHOTS` when set).

Chromium is found on the PATH; when missing it is installed with apt-get if the test runs as root;
otherwise the browser checks are skipped with the reason.
"""
import base64, json, os, warnings, posixpath, re, shutil, subprocess, time, urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

FIXTURE_DIR = 'zz_fixture_section'  # sorts after any real folder; removed with the temporary copy
BROWSER_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
                 '--disable-component-update', '--disable-sync', '--disable-extensions', '--hide-scrollbars',
                 '--remote-allow-origins=*', '--window-size=1280,1600']


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


def page_name(rel: str) -> str:
    "nbdev's page for a notebook path relative to nbs/: number prefix dropped, lower case, .html."
    d, n = posixpath.split(rel)
    return posixpath.join(d, re.sub(r'^\d+[a-zA-Z0-9]*_', '', n.lower())[:-len('.ipynb')] + '.html')


def source_notebooks(nbs: Path) -> list:
    return sorted(p.relative_to(nbs).as_posix() for p in nbs.rglob('*.ipynb')
                  if not any(q.startswith(('_', '.')) for q in p.relative_to(nbs).parts))


def write_fixtures(nbs: Path):
    "A section of two notebooks; the first holds a plotly figure as `plotly_mimetype` stores it."
    import plotly.graph_objects as go, plotly.io as pio
    V4 = nbformat.v4; d = nbs/FIXTURE_DIR; d.mkdir()
    fig = go.Figure(go.Bar(x=['a', 'b', 'c'], y=[3, 1, 2]))
    out = V4.new_output('execute_result', data=pio.renderers['plotly_mimetype'].to_mimebundle(fig.to_dict()), execution_count=1)
    nbformat.write(V4.new_notebook(cells=[V4.new_markdown_cell('# Fixture plot\n\n> A plotly figure.'),
        V4.new_markdown_cell('## The figure\n\nSee `mao_nb.core.load_image` and [the next page](02_second.ipynb).'),
        V4.new_code_cell('fig', outputs=[out])], metadata={'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}}),
        d/'01_plot.ipynb')
    nbformat.write(V4.new_notebook(cells=[V4.new_markdown_cell('# Fixture second\n\n> The second page of the section.'),
        V4.new_code_cell('1 + 1', outputs=[V4.new_output('execute_result', data={'text/plain': '2'}, execution_count=1)])]),
        d/'02_second.ipynb')


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
        self.evaluate('''new Promise(done => { const t0 = Date.now(); (function wait() {  // plotly drawn (or 10 s)
            const g = [...document.querySelectorAll('.plotly-graph-div')];
            if (g.every(d => d._fullLayout && d.querySelector('.main-svg')) || Date.now() - t0 > 10000) setTimeout(done, 50);
            else setTimeout(wait, 50); })(); })''')
        problems = []
        for e in self.events:
            m, p = e['method'], e['params']
            if m == 'Runtime.exceptionThrown': problems.append(f"JS exception: {p['exceptionDetails'].get('exception', {}).get('description') or p['exceptionDetails'].get('text')}")
            elif m == 'Runtime.consoleAPICalled' and p['type'] in ('error', 'assert'): problems.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}")
            elif m == 'Log.entryAdded' and p['entry']['level'] == 'error': problems.append(f"log error: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif m == 'Network.requestWillBeSent' and not p['request']['url'].startswith(('file:', 'data:', 'about:', 'blob:')):
                problems.append(f"network request: {p['request']['url']}")
        return problems

    def screenshot(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send('Page.captureScreenshot', {'format': 'png'})['data']))

    def close(self):
        try: self.ws.close()
        finally:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill()


PAGE_INFO_JS = r"""(() => {
  const main = document.querySelector('main');
  const text = s => [...document.querySelectorAll(s)].map(e => e.innerText);
  const api = document.getElementById('load_image');
  return {
    title: document.title,
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    sidebar: [...document.querySelectorAll('.site-sidebar a')].map(a => [a.getAttribute('href'), a.innerText.trim(), a.classList.contains('active')]),
    sections: text('.site-sidebar .section-title'),
    prev: [...document.querySelectorAll('.page-nav .page-prev')].map(a => a.getAttribute('href')),
    next: [...document.querySelectorAll('.page-nav .page-next')].map(a => a.getAttribute('href')),
    h1: text('.page-title h1'),
    inputs: text('.jp-InputArea-editor'),
    prose: [...document.querySelectorAll('.jp-RenderedMarkdown, .jp-MarkdownOutput')].map(e => {
      const c = e.cloneNode(true); c.querySelectorAll('pre, code').forEach(x => x.remove()); return c.textContent; }).join('\n'),
    plots: document.querySelectorAll('.js-plotly-plot').length,
    drawn: [...document.querySelectorAll('.js-plotly-plot')].filter(d => d._fullLayout && d.querySelector('.main-svg')).length,
    fits: [...document.querySelectorAll('.js-plotly-plot')].filter(d => d.querySelector('.main-svg') &&
      +d.querySelector('.main-svg').getAttribute('width') <= d.getBoundingClientRect().width + 1).length,
    bars: document.querySelectorAll('.js-plotly-plot .trace.bars .point').length,
    api: api ? api.closest('.jp-RenderedMarkdown, .jp-MarkdownOutput').innerText : null,
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
    write_fixtures(proj/'nbs')
    try: dest = build_docs(base/'site', quarto=False, root=proj, quiet=True)
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
        for f in sorted(dest.rglob('*.html')):
            rel = f.relative_to(dest).as_posix()
            problems = b.open(f.as_uri())
            out[rel] = (problems, b.evaluate(PAGE_INFO_JS))
            if rel in ('index.html', 'api/core.html', f'{FIXTURE_DIR}/plot.html'):
                b.screenshot(dest/'_screenshots'/(rel.replace('/', '_')[:-5] + '.png'))
    finally: b.close()
    if os.environ.get('MAO_NB_SCREENSHOTS'):
        shutil.copytree(dest/'_screenshots', os.environ['MAO_NB_SCREENSHOTS'], dirs_exist_ok=True)
    return out


def test_every_notebook_has_a_page(site):
    dest, nbs = site
    expected = {'index.html' if r == 'index.ipynb' else page_name(r) for r in source_notebooks(nbs)}
    pages = {f.relative_to(dest).as_posix() for f in dest.rglob('*.html')}
    assert expected == pages, f'missing pages: {sorted(expected - pages)}; unexpected: {sorted(pages - expected)}'
    assert (dest/'plotly.min.js').stat().st_size > 1_000_000
    assert (dest/'images'/'pipeline.svg').exists(), 'images referenced by the notebooks must be copied'


def test_no_cdn_in_pages(site):
    "No page loads anything from the network (scripts, styles, images): the site works offline."
    dest, _ = site
    for f in dest.rglob('*.html'):
        s = f.read_text()
        remote = re.findall(r'<(?:script|link|img|iframe)\b[^>]*(?:src|href)="((?:https?:)?//[^"]+)"', s)
        assert not remote, f'{f.name} loads {remote}'
        scripts = re.findall(r'<script\b[^>]*\bsrc="([^"]+)"', s)
        assert len(scripts) == 1 and scripts[0].endswith('plotly.min.js'), f'{f.name} must load only the local plotly.js: {scripts}'


def test_pages_load_without_errors(visited):
    bad = {p: probs for p, (probs, _) in visited.items() if probs}
    assert not bad, f'pages with errors or network requests: {json.dumps(bad, indent=1)[:4000]}'


def test_navigation_links_resolve(site, visited):
    """Sidebar, prev/next and every other relative link point to an existing file; links within a page (table
    of contents) and doc links to an API entry (`load_image`) to an existing anchor. Other doc links whose anchor
    is missing are reported as warnings: nbdev writes some (e.g. `Class.method` for methods documented under
    another heading) that Quarto's site would not resolve either."""
    dest, nbs = site
    ids = {p: set(info['ids']) for p, (_, info) in visited.items()}
    broken, loose = [], []
    for page, (_, info) in visited.items():
        for href in info['links']:
            if re.match(r'^[a-z][\w+.-]*:|^//', href): continue  # external (GitHub source links): not followed
            path, _, frag = href.partition('#')
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path)) if path else page
            if not (dest/target).is_file(): broken.append(f'{page}: {href} (no file)')
            elif frag and frag not in ids.get(target, ()):
                (broken if not path or frag == 'load_image' else loose).append(f'{page}: {href} (no anchor)')
    assert not broken, '\n'.join(broken)
    fixture = visited[f'{FIXTURE_DIR}/plot.html'][1]['links']
    assert '../api/core.html#load_image' in fixture and 'second.html' in fixture, fixture  # doc link and notebook link
    if loose: warnings.warn('doc links to missing anchors:\n' + '\n'.join(loose))


def test_sidebar_order_sections_and_prev_next(site, visited):
    dest, nbs = site
    info = visited['index.html'][1]
    hrefs = [h for h, _, _ in info['sidebar']]
    import yaml
    listed = []  # the hand-written sidebar (nbs/sidebar.yml), then the notebooks it does not list (the fixture section)
    def walk(xs):
        for x in xs or []:
            if isinstance(x, str): listed.append(x)
            else: walk(x.get('contents'))
    walk(yaml.safe_load((nbs/'sidebar.yml').read_text())['website']['sidebar']['contents'])
    order = listed + sorted(r for r in source_notebooks(nbs) if r not in listed)
    test_order = ['index.html' if r == 'index.ipynb' else page_name(r) for r in order]
    assert test_order[1].startswith('tutorials/'), test_order[:3]  # the tutorials open the course
    assert hrefs == test_order, f'sidebar order {hrefs} != notebook order {test_order}'
    assert FIXTURE_DIR in [t.lower() for t in info['sections']], info['sections']
    assert [t.lower() for t in info['sections']] == ['tutorials', 'api', 'explanations', 'developers', FIXTURE_DIR], info['sections']
    titles = {h: t for h, t, _ in info['sidebar']}
    assert titles[f'{FIXTURE_DIR}/plot.html'] == 'Fixture plot' and titles['api/core.html'] == 'Core'  # H1 titles
    for i, page in enumerate(hrefs):  # prev/next follow the sidebar; exactly one active entry
        pinfo = visited[page][1]; here = posixpath.dirname(page)
        absolute = lambda l: [posixpath.normpath(posixpath.join(here, h)) for h in l]
        assert absolute(pinfo['prev']) == hrefs[max(i-1, 0):i], (page, pinfo['prev'])
        assert absolute(pinfo['next']) == hrefs[i+1:i+2], (page, pinfo['next'])
        assert [posixpath.normpath(posixpath.join(here, h)) for h, _, a in pinfo['sidebar'] if a] == [page]
        assert pinfo['h1'] == [titles[page]]


def test_api_entry_rendered(visited):
    "The show_doc block of `load_image`: heading, signature with its docments, docstring."
    from fastcore.docments import docments
    from mao_nb.core import load_image
    info = visited['api/core.html'][1]
    assert info['api'], 'no element with id load_image on api/core.html'
    assert 'def load_image(' in info['api'] and load_image.__doc__.split('`')[0].strip() in info['api']
    for name, doc in docments(load_image).items():
        if doc: assert doc in info['api'], f'docment of {name!r} missing: {doc!r}'


def test_reader_sees_no_directives_or_quarto_markup(visited):
    for page, (_, info) in visited.items():
        assert not [s for s in info['inputs'] if s.lstrip().startswith('#|')], f'{page}: nbdev directives shown in code'
        assert not [s for s in info['inputs'] if 'from fastcore.test import' in s], f'{page}: a hidden cell is shown'
        assert not re.search(r'\]\([^)]*\)\{|^:::', info['prose'], flags=re.M), f'{page}: Quarto markup left in the text'


def test_plotly_figures_are_interactive(site, visited):
    "The fixture figure is drawn by plotly.js, and so is every figure stored in a real notebook."
    dest, nbs = site
    fx = visited[f'{FIXTURE_DIR}/plot.html'][1]
    assert (fx['plots'], fx['drawn'], fx['fits'], fx['bars']) == (1, 1, 1, 3), fx  # drawn, within the page's column
    proc = dest.parent/'proj'/'_proc'
    for rel in source_notebooks(proc):
        nb = nbformat.read(proc/rel, as_version=4)
        n = sum('application/vnd.plotly.v1+json' in o.get('data', {}) for c in nb.cells for o in c.get('outputs', []))
        info = visited['index.html' if rel == 'index.ipynb' else page_name(rel)][1]
        assert info['plots'] == info['drawn'] == info['fits'] == n, f'{rel}: {n} plotly outputs, {info["plots"]} figures, {info["drawn"]} drawn'
