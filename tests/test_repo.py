"""The repository keeps its promises: README rendered from the index, CI running the README's commands."""
import configparser
import re
from pathlib import Path

import imdm
from imdm.readme import render_readme, sync_readme

ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> str:
    "The first ```sh block under `## heading` in README.md."
    text = (ROOT / 'README.md').read_text()
    section = text.split(f'## {heading}\n', 1)[1].split('\n## ', 1)[0]
    return re.search(r'```sh\n(.*?)\n```', section, re.S).group(1).strip()


def test_readme_matches_index():
    assert sync_readme(ROOT, check=True), 'README.md is stale: run `imdm readme`'
    assert render_readme(ROOT / 'nbs' / 'index.ipynb').startswith('# imdm\n')


def test_ci_runs_the_readme_commands():
    ci = (ROOT / '.ci' / 'run').read_text()
    install, test = readme_block('Install'), readme_block('Test')
    assert install.startswith('pip install') and 'nbdev_test' in test and 'pytest' in test
    assert install in ci.splitlines(), install
    assert f"({test})" in ci.splitlines(), test          # in a subshell, so that `set -e` stops CI when nbdev_test fails


def test_version_matches_settings():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'settings.ini')
    assert imdm.__version__ == cfg['DEFAULT']['version']


def test_constraints_pin_the_cpu_torch():
    pins = (ROOT / 'constraints.txt').read_text().split()
    assert any(re.fullmatch(r'torch==\d+\.\d+\.\d+', p) for p in pins)


def test_nothing_looks_for_a_shared_folder():
    "A clone has no `../shared`: the package and the tests read corpora from data/ (or $IMDM_DATA) only."
    here = Path(__file__).name
    for f in [*(ROOT / 'imdm').rglob('*.py'), *(p for p in (ROOT / 'tests').glob('*.py') if p.name != here)]:
        text = f.read_text()
        assert 'shared_dir' not in text and 'IMDM_SHARED' not in text, f


def test_data_card_lists_every_data_file():
    from imdm.data import DATA_FILES
    card = (ROOT / 'data' / 'README.md').read_text()
    for name, sha in DATA_FILES.items():
        assert f'`{name}`' in card and sha[:8] in card, name


def test_results_hold_only_what_commands_wrote():
    code = sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'results').rglob('*') if p.suffix in ('.py', '.sh', '.ipynb'))
    assert not code, f'analyses belong in the notebooks (imdm analyse), not in results/: {code}'



def test_package_lines_fit_120_characters():
    "Every line of the exported package is at most 120 characters, but the first of nbdev's own `__all__` list."
    # nbdev wraps `__all__` at 120 and then prefixes `__all__ = `, so that line alone may reach 130 (ruff.toml)
    long = [f"{p.name}:{i}: {len(line)}" for p in sorted((ROOT / 'imdm').glob('*.py')) if p.name != '_modidx.py'
            for i, line in enumerate(p.read_text().splitlines(), 1) if len(line) > 120 and not line.startswith('__all__ = [')]
    assert not long, f"lines over 120 characters (fix them in the notebooks, then nbdev_export): {long}"
