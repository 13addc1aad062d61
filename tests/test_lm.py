"""LM training as a user runs it: a killed run that resumes ends where an uninterrupted one does, and two
gloo processes under torchrun train the same model as one process with the whole batch."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imdm.data import have_data

pytestmark = pytest.mark.skipif(not have_data(), reason="needs the data folder's corpora (imdm data import; see data/README.md)")
SCRIPT = Path(sys.executable).parent / 'imdm'


def params(tmp: Path, **changes) -> Path:
    p = {'kind': 'mdlm', 'data': {'corpus': 'lm1b-shard', 'length': 32, 'trim_vocab': True, 'cache_dir': str(tmp / 'cache')},
         'model': {'preset': 'micro', 'dropout': 0.1},
         'train': {'steps': 12, 'lr': 1e-3, 'warmup': 2, 'ema': 0.99, 'log_every': 4, 'ckpt_every': 2, 'progress': False},
         'batch_size': 8, 'val_batches': 1, 'device': 'cpu'}
    for k, v in changes.items():
        p[k] = {**p[k], **v} if isinstance(v, dict) else v
    f = tmp / f"params-{abs(hash(json.dumps(changes, sort_keys=True)))}.json"
    f.write_text(json.dumps(p))
    return f


def stage(args, **kw):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([str(SCRIPT), 'stage', *args], capture_output=True, text=True, timeout=900, env=env, **kw)


def weights(folder: Path) -> dict:
    return load_file(folder / 'model' / 'model.safetensors')


def flat(w: dict) -> torch.Tensor:
    return torch.cat([w[k].flatten() for k in sorted(w)])


def test_killed_training_resumes_to_the_same_weights(tmp_path):
    p = params(tmp_path)
    out = stage(['train', str(p), '--out', str(tmp_path / 'straight')])
    assert out.returncode == 0, out.stderr[-3000:]
    status = json.loads((tmp_path / 'straight' / 'status.json').read_text())          # recorded as `imdm run` records its runs
    assert (status['experiment'], status['status'], len(status['attempts'])) == ('lm_train', 'done', 1), status
    from imdm.lm_experiment import TrainStage
    given = json.loads(p.read_text())
    assert status['params'] == given                                                    # what was asked for
    assert json.loads((tmp_path / 'straight' / 'params.json').read_text()) == TrainStage.from_dict(given).to_dict()   # every setting

    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen([str(SCRIPT), 'stage', 'train', str(p), '--out', str(tmp_path / 'killed')],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    latest = tmp_path / 'killed' / 'checkpoints' / 'latest.json'
    deadline = time.time() + 600
    while time.time() < deadline and not (latest.exists() and json.loads(latest.read_text())['step'] >= 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped = json.loads(latest.read_text())['step']
    assert 4 <= stopped < 12, stopped                                # killed mid-run
    out = stage(['train', str(p), '--out', str(tmp_path / 'killed')])
    assert out.returncode == 0 and f'resuming from step {stopped}' in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    a, b = weights(tmp_path / 'straight'), weights(tmp_path / 'killed')
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), 'resumed weights differ'


def test_two_gloo_processes_match_one_process(tmp_path):
    common = {'kind': 'ar', 'model': {'preset': 'micro', 'dropout': 0.0}, 'train': {'ema': None, 'steps': 6}}
    one = params(tmp_path, batch_size=16, **common)
    two = params(tmp_path, batch_size=8, **{**common, 'train': {**common['train'], 'seed': 0}})
    out = stage(['train', str(one), '--out', str(tmp_path / 'one')])
    assert out.returncode == 0, out.stderr[-3000:]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29533',
                          str(SCRIPT), 'stage', 'train', str(two), '--out', str(tmp_path / 'two')],
                         capture_output=True, text=True, timeout=900, env=env)
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-3000:]
    a, b = flat(weights(tmp_path / 'one')), flat(weights(tmp_path / 'two'))
    moved = (a - flat(load_file(tmp_path / 'one' / 'checkpoints' / 'step_00000002' / 'model.safetensors'))).norm().item()
    gap = (a - b).norm().item()
    print(f'moved over the last 4 steps {moved:.3g}, one process vs two {gap:.3g}')
    assert moved > 1e-3                                              # the weights did train
    # averaged gradients = the whole batch's, up to float summation order (which AdamW amplifies where gradients are
    # tiny); a rank training alone, or on the other rank's data, is off by about the size of a step
    assert gap < 1e-3 * moved, (gap, moved)
    rng = load_file(tmp_path / 'two' / 'checkpoints' / 'step_00000006' / 'rng.safetensors')   # each rank's stream, to resume
    assert not torch.equal(rng['generator_rank0'], rng['generator_rank1'])


def test_ar_final_validation_runs_without_dropout(tmp_path):
    from imdm.checkpoints import load_model
    from imdm.lm_experiment import TrainStage, _ar_val, open_data
    f = params(tmp_path, kind='ar', model={'dropout': 0.5}, train={'ema': None, 'lr': 1e-2}, val_batches=2)
    out = stage(['train', str(f), '--out', str(tmp_path / 'ar')])
    assert out.returncode == 0, out.stderr[-3000:]
    reported = json.loads((tmp_path / 'ar' / 'metrics.json').read_text())['final_val_ppl (EMA)']
    p = TrainStage.from_dict(json.loads(f.read_text()))
    *_, val = open_data(p.data, p.batch_size, p.train.seed, 'cpu')
    model = load_model(tmp_path / 'ar' / 'model').eval()                 # no EMA: the saved weights are the trained ones
    assert abs(reported - _ar_val(model, val, p.val_batches)) < 1e-6 * reported   # in train mode it read 11% lower
