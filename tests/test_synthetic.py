"""`imdm synthetic --smoke` end to end: the CLI runs the papermill notebook into a run folder and prints Table 1."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / 'imdm'


def test_smoke_run_writes_its_folder_and_imdm_beats_mdm(tmp_path):
    out = subprocess.run([str(SCRIPT), 'synthetic', '--smoke', '--runs-dir', str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'IMDM ReDi' in out.stdout and 'Random Seq.' in out.stdout and 'wall time' in out.stdout
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith('synthetic-')]
    for name in ('notebook.ipynb', 'params.json', 'status.json', 'metrics.json', 'figures/validity.json'):
        assert (folder / name).exists(), name
    s = json.loads((folder / 'metrics.json').read_text())['summary']
    imdm, mdm = s['IMDM ReDi']['1'], s['MDM ReDi']['1']
    assert imdm['validity'][0] > mdm['validity'][0] + 0.2
    assert imdm['factorization_error'][0] < mdm['factorization_error'][0] - 0.3
    assert abs(mdm['validity'][0] - 0.5) < 0.06

    again = subprocess.run([str(SCRIPT), 'synthetic', '--smoke', '--runs-dir', str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and 'already finished' in again.stdout      # not run (nor overwritten) twice


def test_bad_parameters_fail_before_running(tmp_path):
    out = subprocess.run([str(SCRIPT), 'synthetic', '--set', 'noise_dim=0', '--runs-dir', str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and 'dim=0 must be an integer >= 1' in out.stderr
    assert not any(tmp_path.iterdir())


def test_a_sweep_checks_every_value_before_running(tmp_path):
    cases = [(['--sweep', 'coupling_pairs=64,0'], 'coupling_pairs=0 must be an integer >= 1'),
             (['--sweep', 'coupling_pairs='], "--sweep 'coupling_pairs=' must look like KEY=V1,V2,..."),
             (['--sweep', 'seed=1,2'], "unknown keys ['seed']"),
             (['--draws', 'gumbel'], "invalid choice: 'gumbel'")]
    for extra, message in cases:
        out = subprocess.run([str(SCRIPT), 'synthetic', *extra, '--runs-dir', str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and message in out.stderr, (extra, out.stderr[-500:])
    assert not any(tmp_path.iterdir())


def test_a_sweep_is_the_runs_of_its_values(tmp_path):
    # `imdm synthetic --sweep` goes through imdm.sweeps: its cells are the very runs `imdm synthetic` makes for each value
    out_json = tmp_path / 'sweep.json'
    runs = tmp_path / 'runs'
    out = subprocess.run([str(SCRIPT), 'synthetic', '--smoke', '--sweep', 'noise_dim=8,16', '--out', str(out_json), '--runs-dir', str(runs)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert '=== sweep synthetic-noise_dim: 2 cells, 2 distinct stages' in out.stdout
    rows = json.loads(out_json.read_text())['rows']
    assert [r['value'] for r in rows] == [8, 16] and all('IMDM ReDi' in r['one_step'] for r in rows)
    folders = sorted(p.name for p in runs.iterdir() if p.name.startswith('synthetic-'))
    assert len(folders) == 2
    for dim in (8, 16):
        p = json.loads(next(f for f in (runs / n / 'params.json' for n in folders) if json.loads(f.read_text())['noise_dim'] == dim).read_text())
        assert p['smoke'] is True
    one = subprocess.run([str(SCRIPT), 'synthetic', '--smoke', '--set', 'noise_dim=16', '--runs-dir', str(runs)],
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0 and 'already finished' in one.stdout, one.stdout[-2000:] + one.stderr[-2000:]
    assert sorted(p.name for p in runs.iterdir() if p.name.startswith('synthetic-')) == folders
