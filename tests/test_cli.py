"""The `imdm` command as a user runs it: a separate process, its exit code, its output."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / 'imdm'      # the console script the install put beside this Python


def imdm(*args, cwd=ROOT):
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_command_is_installed():
    assert SCRIPT.exists(), f'no imdm script at {SCRIPT}: is the package installed in this environment?'


def test_help_lists_the_commands():
    out = imdm('--help')
    assert out.returncode == 0
    for cmd in ('info', 'bench', 'readme'):
        assert cmd in out.stdout


def test_bench_prints_ratios_measured_side_by_side():
    out = imdm('bench', '--preset', 'micro', '--vocab-size', '64', '--length', '16', '--batch', '2',
               '--steps', '2', '--noise-dim', '8', '--repeats', '1', '--device', 'cpu', '--json')
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert set(r['seconds']) == {'backbone', 'mdlm_forward', 'imdm_forward', 'mdlm_sample', 'imdm_sample'}
    assert all(v > 0 for v in r['seconds'].values())
    assert r['imdm_over_mdlm_step'] > 0


def test_bad_values_are_named():
    out = imdm('bench', '--steps', '0', '--preset', 'micro', '--repeats', '1')
    assert out.returncode == 2
    assert 'steps=0 must be an integer >= 1' in out.stderr
    out = imdm('fly')
    assert out.returncode == 2 and "invalid choice: 'fly'" in out.stderr


def test_readme_check_passes_in_the_repo(tmp_path):
    assert imdm('readme', '--check').returncode == 0
    out = imdm('readme', '--check', cwd=tmp_path)
    assert out.returncode == 2 and 'no settings.ini' in out.stderr


def test_gpucheck_runs_its_tiny_version_on_a_cpu(tmp_path):
    out = tmp_path / 'gpu' / 'report.json'
    run = imdm('gpucheck', '--device', 'cpu', '--out', str(out), '--set', 'sample_steps=[2, 4]')
    assert run.returncode == 0, run.stderr
    r = json.loads(out.read_text())
    assert r['config']['sample_steps'] == [2, 4] and r['config']['lm1b']['preset'] == 'micro'
    assert [(row['steps'], row['cache']) for row in r['sampling']['rows']] == [(2, False), (2, True), (4, False), (4, True)]
    assert r['goals']['train_mfu_long']['met'] is None and r['goals']['imdm_over_mdlm_step']['value'] > 0
    assert 'goal imdm_over_mdlm_step' in run.stdout and f'report written to {out}' in run.stderr
    bad = imdm('gpucheck', '--device', 'cpu', '--set', 'noise_dim=0')
    assert bad.returncode == 2 and 'noise_dim=0' in bad.stderr


def test_a_sweep_plan_lists_each_distinct_stage_once(tmp_path):
    out = imdm('sweep', 'table14-wikitext2', '--plan', '--runs-dir', str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = [line.split(None, 3) for line in out.stdout.splitlines()]
    ids = [r[0] for r in rows]
    assert ids.count('teacher') == 1 and ids.count('judge') == 1 and ids.count('eval') == 3, out.stdout
    assert 'mdlm_sdtt' not in ids and all(r[2] == 'pending' for r in rows)   # nothing has run in an empty folder
    assert rows[0][3] == 'dim=64, dim=256, dim=1024' and not list(tmp_path.iterdir())
    bad = imdm('sweep', 'table14-wikitext2', '--plan', '--cells', 'dim=7')
    assert bad.returncode == 2 and "cells ['dim=7'] are not in sweep 'table14-wikitext2'" in bad.stderr


def test_every_option_of_every_command_has_a_help_line():
    """`imdm <command> --help` explains every option it takes."""
    import argparse
    from imdm.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, p in sub.choices.items() for a in p._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing


def test_runs_shows_damaged_folders_as_unreadable_and_goes_on(tmp_path):
    """`imdm runs` crashed on one malformed status.json, and one bad metrics.json blocked the whole table without
    naming the file. Now each damaged folder is one row that says which file is unreadable; the others are listed."""
    good, listed, notjson, badmetrics = (tmp_path / n for n in ('good', 'listed', 'notjson', 'badmetrics'))
    for d in (good, listed, notjson, badmetrics): d.mkdir()
    (good / 'status.json').write_text(json.dumps({'experiment': 'lm_eval', 'status': 'done', 'seconds': 60, 'params': {'a': 1}}))
    (good / 'metrics.json').write_text('{}')
    (listed / 'status.json').write_text('[1, 2]')
    (notjson / 'status.json').write_text('{"status": ')
    (badmetrics / 'status.json').write_text(json.dumps({'experiment': 'lm_eval', 'status': 'done', 'seconds': 'soon'}))
    (badmetrics / 'metrics.json').write_bytes(b'\xff\xfe')
    import socket
    for name, pid in (('pidtext', 'abc'), ('pidfloat', 1.5), ('pidhuge', 2**70)):       # hand-edited pids crashed the table
        (tmp_path / name).mkdir()
        (tmp_path / name / 'status.json').write_text(json.dumps({'status': 'running', 'host': socket.gethostname(), 'pid': pid}))
    (tmp_path / 'deep').mkdir()
    (tmp_path / 'deep' / 'status.json').write_text('[' * 100_000 + ']' * 100_000)
    out = imdm('runs', '--runs-dir', str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = {line.split('|')[1].strip(): line for line in out.stdout.splitlines()[2:]}
    assert '| done |' in rows['good']
    assert '| unreadable |' in rows['listed'] and 'holds a list, not a JSON object' in rows['listed']
    assert '| unreadable |' in rows['notjson'] and 'notjson/status.json is unreadable' in rows['notjson']
    assert '| unreadable |' in rows['badmetrics'] and 'badmetrics/metrics.json is unreadable' in rows['badmetrics']
    assert all('| running |' in rows[n] for n in ('pidtext', 'pidfloat', 'pidhuge')) and '| unreadable |' in rows['deep']


def test_data_check_checks_the_folder_it_is_given(tmp_path):
    """`imdm data check FOLDER` ignored its argument and checked the checkout's data folder."""
    out = imdm('data', 'check', str(tmp_path))
    assert out.returncode == 1 and f'data folder {tmp_path}:' in out.stdout and 'missing or damaged' in out.stdout
    bad = imdm('data', 'check', str(tmp_path / 'nosuch'))
    assert bad.returncode == 2 and 'nosuch' in bad.stderr and 'is not a folder' in bad.stderr
