"""The routing explorer in a real browser: JupyterLab under headless Chromium (Debian's chromium, driven by playwright)."""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's chromium)")
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def notebook(cells: list[str]) -> dict:
    return {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': f'c{i}', 'metadata': {}, 'outputs': [], 'source': c}
                      for i, c in enumerate(cells)],
            'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
            'nbformat': 4, 'nbformat_minor': 5}


@pytest.fixture(scope='module')
def lab_root(tmp_path_factory):
    from imdm.synthetic_experiment import SyntheticParams, run_synthetic
    root = tmp_path_factory.mktemp('lab')
    run_synthetic(SyntheticParams().quick(), root / 'run', log=lambda *a: None)
    cells = ["from imdm.routing import RoutingExplorer\nex = RoutingExplorer('run', n=300, grid=15)\nex.widget"]
    (root / 'explorer.ipynb').write_text(json.dumps(notebook(cells)))
    return root


@pytest.fixture(scope='module')
def lab(lab_root):
    port = free_port()
    log = open(lab_root / 'jupyterlab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', f'--port={port}',
                             '--ServerApp.ip=127.0.0.1', '--IdentityProvider.token=', '--ServerApp.password=',
                             '--ServerApp.disable_check_xsrf=True', f'--ServerApp.root_dir={lab_root}',
                             '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urllib.request.urlopen(f'{url}/api', timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail('JupyterLab did not start: ' + (lab_root / 'jupyterlab.log').read_text()[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def plot_state(page) -> dict:
    "Point counts per trace and the panel titles of the first plotly figure on the page."
    return page.evaluate("""() => { const gd = document.querySelector('.jp-OutputArea .js-plotly-plot');
        if (!gd || !gd.data) return null;
        return {points: gd.data.map(t => (t.x || []).length), xs: gd.data.map(t => Array.from(t.x || []).slice(0, 5)),
                titles: Array.from(gd.querySelectorAll('.annotation-text')).map(a => a.textContent)}; }""")


def wait_for(page, predicate, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        state = plot_state(page)
        if state and predicate(state):
            return state
        time.sleep(0.5)
    raise AssertionError(f'timed out; last state {plot_state(page)}')


def test_routing_explorer_renders_and_responds(lab, lab_root):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto(f'{lab}/lab/tree/explorer.ipynb')
        page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=90_000)
        page.wait_for_function("() => document.body.innerText.includes('| Idle')", timeout=90_000)   # kernel ready
        page.click('.lm-MenuBar-itemLabel:text-is("Run")')
        page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
        first = wait_for(page, lambda s: sum(s['points']) >= 2 * 300)          # both panels drawn
        assert len(first['points']) == 8 and any('IMDM' in t for t in first['titles'])
        page.screenshot(path=str(lab_root / 'explorer.png'))

        # the round slider: one step left, to round 1; the IMDM panel must change
        handle = page.locator('.widget-slider .noUi-handle').first
        handle.focus()
        handle.press('ArrowLeft')
        moved = wait_for(page, lambda s: any('round 1' in t for t in s['titles']))
        assert moved['xs'][4:] != first['xs'][4:]

        # fresh noise redraws both panels
        page.click('button:has-text("new noise")')
        fresh = wait_for(page, lambda s: s['xs'][:4] != moved['xs'][:4])
        assert sum(fresh['points']) >= 2 * 300
        page.screenshot(path=str(lab_root / 'explorer-after.png'))
        browser.close()
    assert not errors, errors
