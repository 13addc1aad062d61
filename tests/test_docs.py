"""The documentation site: built offline from the notebooks (`imdm docs`), checked page by page in headless Chromium
with the network off; and nbdev's own Quarto set-up kept valid for `nbdev_docs`."""
import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from imdm.docs import build_site, doc_notebooks, page_name

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's chromium)")
PAGES = [page_name(p) for p in doc_notebooks(ROOT / 'nbs')]


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The site, built once for the module (IMDM_DOCS_SITE names an already built one, to check it without rebuilding)."
    if os.environ.get('IMDM_DOCS_SITE'): return Path(os.environ['IMDM_DOCS_SITE'])
    return build_site(tmp_path_factory.mktemp('docs') / '_site', root=ROOT, log=lambda *a: None)


@pytest.fixture(scope='module')
def server(site):
    "The site served on localhost."
    handler = functools.partial(type('Quiet', (http.server.SimpleHTTPRequestHandler,), {'log_message': lambda *a: None}),
                                directory=str(site))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()


@pytest.fixture(scope='module')
def browser_page(server):
    "A Chromium page whose every request outside localhost is refused (and recorded), as on a machine with no network."
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(viewport={'width': 1400, 'height': 1000})
        log = {'outside': [], 'failed': [], 'errors': []}

        def route(r):
            if urlparse(r.request.url).hostname == '127.0.0.1': r.continue_()
            else: log['outside'].append(r.request.url); r.abort()
        context.route('**/*', route)
        page = context.new_page()
        # a request cut short by the next navigation (the favicon, say) is ERR_ABORTED, not a missing file: a file
        # that is not there still fails, as an HTTP 404 below
        page.on('requestfailed', lambda r: 'ERR_ABORTED' in (r.failure or '') or log['failed'].append(f'{r.url} {r.failure}'))
        page.on('response', lambda r: r.status >= 400 and log['failed'].append(f'{r.url} HTTP {r.status}'))
        page.on('pageerror', lambda e: log['errors'].append(str(e)))
        yield page, log
        browser.close()


PAGE_STATE = r"""() => {
  const content = document.querySelector('.md-content');
  const text = content.cloneNode(true);
  text.querySelectorAll('pre, code, script, .katex').forEach(e => e.remove());
  return {
    nav: Array.from(document.querySelectorAll('.md-sidebar--primary a.md-nav__link'))
              .map(a => new URL(a.href).pathname.replace(/\/$/, '/index.html').slice(1)),
    math: document.querySelectorAll('.arithmatex').length,
    typeset: document.querySelectorAll('.arithmatex .katex').length,
    katexErrors: document.querySelectorAll('.katex-error').length,
    rawMath: (text.innerText.match(/\$[^$\n]+\$|\\\(|\\\[/g) || []).slice(0, 3),
    figures: document.querySelectorAll('.imdm-plotly').length,
    plots: Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
      svg: gd.querySelectorAll('svg.main-svg').length,
      traces: gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace, .heatmaplayer .hm').length,
      points: (gd.data || []).reduce((n, t) => n + ((t.x || t.y || t.z || []).length || 0), 0)})),
  }; }"""


@needs_chromium
def test_site_pages_render_offline(browser_page, server):
    page, log = browser_page
    shots = os.environ.get('IMDM_DOCS_SHOTS')
    totals = {'math': 0, 'figures': 0}
    for name in PAGES:
        page.goto(f'{server}/{name}', wait_until='load')
        page.wait_for_function("""() => Array.from(document.querySelectorAll('.imdm-plotly'))
            .every(el => el.querySelector('svg.main-svg'))""", timeout=60_000)
        s = page.evaluate(PAGE_STATE)
        assert set(PAGES) <= set(s['nav']), (name, sorted(set(PAGES) - set(s['nav'])))    # the sidebar links to every page
        assert s['typeset'] == s['math'] and s['katexErrors'] == 0, (name, s)          # every formula typeset by KaTeX
        assert not s['rawMath'], (name, s['rawMath'])                                  # no $...$ left as text
        assert len(s['plots']) == s['figures'], (name, s)                                # every figure drawn by plotly.js
        assert all(p['svg'] and p['traces'] and p['points'] for p in s['plots']), (name, s['plots'])
        totals['math'] += s['math']; totals['figures'] += s['figures']
        if shots: Path(shots).mkdir(parents=True, exist_ok=True); page.screenshot(path=f'{shots}/{name[:-5]}.png', full_page=False)
    assert totals['math'] > 50 and totals['figures'] >= 5, totals                     # the math and the results' figures are there
    assert not log['outside'] and not log['failed'] and not log['errors'], log


@needs_chromium
def test_search_finds_a_symbol(browser_page, server):
    page, log = browser_page
    page.goto(f'{server}/index.html')
    page.click('.md-search__input' if page.is_visible('.md-search__input') else 'label.md-search__icon')
    page.keyboard.type('nelbo', delay=30)                  # the search box reacts to key strokes, not to a filled value
    page.wait_for_selector('.md-search-result__item a', timeout=30_000)
    hrefs = page.eval_on_selector_all('.md-search-result__item a', 'as => as.map(a => new URL(a.href).pathname)')
    assert hrefs[0] == '/denoisers.html', hrefs                                        # the best match is its page
    page.click('.md-search-result__item a[href*="denoisers.html"]')
    page.wait_for_url(re.compile(r'denoisers\.html'))
    assert page.locator('h3#nelbo').count() == 1                                       # its show_doc entry, at nbdev's anchor
    assert not log['outside'] and not log['failed'] and not log['errors'], log


@needs_chromium
def test_routing_page_says_how_to_run_it_live(browser_page, server):
    page, _ = browser_page
    page.goto(f'{server}/routing.html')
    text = page.inner_text('.md-content')
    assert 'jupyter lab' in text and '--allow-root' in text and 'RoutingExplorer(run).widget' in text
    assert page.eval_on_selector_all('.js-plotly-plot', 'gds => gds.filter(g => g.layout.sliders && g.layout.sliders.length).length') >= 1


def test_nbdev_quarto_settings_are_valid():
    "What `nbdev_docs` needs besides Quarto: nbdev's standard `_quarto.yml`, the settings it fills `nbdev.yml` from, the stylesheet."
    from nbdev.quarto import _quarto_yml
    ours, standard = yaml.safe_load((ROOT / 'nbs' / '_quarto.yml').read_text()), yaml.safe_load(_quarto_yml)
    test_keys = lambda d: {k: sorted(v) if isinstance(v, dict) else v for k, v in d.items()}
    assert test_keys(ours) == test_keys(standard), 'nbs/_quarto.yml differs from the one nbdev writes'
    assert (ROOT / 'nbs' / ours['format']['html']['css']).exists()
    import configparser
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    for key in ('title', 'description', 'branch', 'git_url', 'doc_host', 'doc_baseurl', 'doc_path', 'nbs_path', 'custom_sidebar'):
        assert cfg['DEFAULT'].get(key), key


def test_nbdev_processes_every_notebook(tmp_path):
    "`nbdev_proc_nbs` without its Quarto check (`nbdev_docs` runs the same steps, then `quarto render`), on a copy of the project."
    from fastcore.xtras import working_directory
    from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs
    shutil.copy(ROOT / 'settings.ini', tmp_path)
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_*.ipynb', 'nbdev.yml', 'sidebar.yml'))
    with working_directory(tmp_path):
        refresh_quarto_yml()
        nbdev_sidebar.__wrapped__()
        proc = proc_nbs(n_workers=0)      # in this process: a fork of pytest, which holds playwright's threads by now, can deadlock
    site = yaml.safe_load((tmp_path / 'nbs' / 'nbdev.yml').read_text())['website']
    assert site['site-url'] == 'https://imdm-workbench.github.io/imdm' and site['title'] == 'imdm'
    sidebar = yaml.safe_load((tmp_path / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    assert sidebar == [p.relative_to(ROOT / 'nbs').as_posix() for p in doc_notebooks(ROOT / 'nbs')]
    for nb in doc_notebooks(ROOT / 'nbs'):
        cells = json.loads((proc / nb.name).read_text())['cells']
        docs = [c for c in cells if c['cell_type'] == 'code' and re.search(r'^show_doc\(', ''.join(c['source']), re.M)]
        assert all(c['outputs'] for c in docs), f'{nb.name}: show_doc cells without output'
        if '#| export' in nb.read_text(): assert docs, f'{nb.name}: no API reference'
