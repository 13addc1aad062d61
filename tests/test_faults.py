"""Faults as a machine deals them: `kill -9` in the middle of training, half way through a checkpoint save and half
way through a coupling shard (`IMDM_FAULT` picks the exact place, see `imdm.core.fault_point`). Running the same
command again must end with the weights (or the coupling) of an uninterrupted run, leave no temporary folder, and
record the truth in the run's status. The corpus and the word-level tokenizer are made here, so this runs anywhere."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(sys.executable).parent / 'imdm'
WORDS = 'the a cat dog sat ran on under mat log red blue big small and then'.split()


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """A small corpus of generated sentences and a word-level tokenizer folder for it."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    d = tmp_path_factory.mktemp('data')
    g = torch.Generator().manual_seed(0)
    lines = [' '.join(WORDS[i] for i in torch.randint(0, len(WORDS), (int(n),), generator=g))
             for n in torch.randint(4, 12, (400,), generator=g)]
    (d / 'corpus.txt').write_text('\n'.join(lines) + '\n')
    specials = ['[PAD]', '[BOS]', '[EOS]', '[MASK]', '[UNK]']
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(specials + WORDS)}, unk_token='[UNK]'))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tk, pad_token='[PAD]', bos_token='[BOS]', eos_token='[EOS]',
                            mask_token='[MASK]', unk_token='[UNK]').save_pretrained(d / 'tokenizer')
    return {'corpus': str(d / 'corpus.txt'), 'tokenizer': str(d / 'tokenizer'), 'length': 16, 'trim_vocab': False,
            'cache_dir': str(d / 'cache')}


def run(args, fault=None, **kw):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', **({'IMDM_FAULT': fault} if fault else {})}
    env.pop('IMDM_FAULT', None) if not fault else None
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=600, env=env, **kw)


def write(path: Path, obj) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


def train_params(data):
    return {'kind': 'mdlm', 'data': data, 'model': {'preset': 'micro', 'dropout': 0.1},
            'train': {'steps': 10, 'lr': 1e-3, 'warmup': 2, 'ema': 0.99, 'log_every': 3, 'ckpt_every': 2, 'progress': False},
            'batch_size': 4, 'val_batches': 1, 'device': 'cpu'}


def same(a: Path, b: Path, name='model/model.safetensors'):
    wa, wb = load_file(a / name), load_file(b / name)
    assert wa.keys() == wb.keys()
    for k in wa: assert torch.equal(wa[k], wb[k]), k


def no_tmp(folder: Path):
    left = [p for p in folder.rglob('*') if p.name.startswith('.tmp-') or p.name.endswith('.tmp')]
    assert not left, left


@pytest.fixture(scope='module')
def straight(data, tmp_path_factory):
    d = tmp_path_factory.mktemp('straight')
    out = run(['stage', 'train', write(d / 'p.json', train_params(data)), '--out', str(d / 'run')])
    assert out.returncode == 0, out.stderr[-3000:]
    return d / 'run'


@pytest.mark.parametrize('fault', ['train-step:5', 'checkpoint-save:3'])
def test_killed_training_resumes_exactly(fault, data, straight, tmp_path):
    p, out = write(tmp_path / 'p.json', train_params(data)), tmp_path / 'run'
    killed = run(['stage', 'train', p, '--out', str(out)], fault=fault)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (out / 'metrics.json').exists()
    if fault.startswith('checkpoint-save'):
        assert list((out / 'checkpoints').glob('.tmp-*')), 'the save was meant to die half way'
    resumed = run(['stage', 'train', p, '--out', str(out)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resuming from step' in resumed.stdout
    same(straight, out)
    no_tmp(out)
    kept = sorted(c.name for c in (out / 'checkpoints').glob('step_*'))
    assert len(kept) <= 3 and kept[-1] == 'step_00000010'                 # the retention default
    ours = json.loads((out / 'metrics.json').read_text())['history']
    theirs = json.loads((straight / 'metrics.json').read_text())['history']
    assert [(h['step'], h['loss']) for h in ours] == [(h['step'], h['loss']) for h in theirs]   # logged values too


def test_a_finished_stage_run_again_changes_nothing(data, straight, tmp_path):
    """As `imdm run` does: a finished stage folder is not trained again; its model and metrics stay byte for byte."""
    p = write(tmp_path / 'p.json', train_params(data))
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in straight.rglob('*') if f.is_file()}
    again = run(['stage', 'train', p, '--out', str(straight)])
    assert again.returncode == 0, again.stderr[-2000:]
    assert 'holds a finished train stage' in again.stderr and 'nothing run' in again.stderr
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in straight.rglob('*') if f.is_file()} == before


def test_two_writers_on_one_folder_the_second_stops(data, tmp_path):
    """Two `imdm stage` runs on one --out used to race; now the second finds the folder's lock taken and stops at once, naming the first."""
    import time
    long = {**train_params(data), 'train': {**train_params(data)['train'], 'steps': 100_000, 'ckpt_every': None}}
    p, out = write(tmp_path / 'p.json', long), tmp_path / 'run'
    first = subprocess.Popen([str(SCRIPT), 'stage', 'train', p, '--out', str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, 'OMP_NUM_THREADS': '1'})
    try:
        from imdm.core import FolderLock
        for _ in range(600):
            if FolderLock(out).holder(): break
            time.sleep(0.1)
        assert FolderLock(out).holder() == f"process {first.pid}"
        second = run(['stage', 'train', p, '--out', str(out)])
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"is being written by process {first.pid}" in second.stderr.strip().splitlines()[-1]
    finally: first.kill(); first.wait()
    from imdm.core import FolderLock
    assert FolderLock(out).holder() is None                                   # the killed writer's lock went with it


def test_killed_coupling_resumes_exactly(data, straight, tmp_path):
    params = {'teacher': str(straight), 'student': 'imdm', 'noise': {'kind': 'uniform', 'dim': 8}, 'data': data,
              'redi': {'pairs': 12, 'coupling_steps': 4, 'batch_size': 4, 'shard_size': 4, 'draws': 'noise'}, 'seed': 3, 'device': 'cpu'}
    p = write(tmp_path / 'c.json', params)
    whole = run(['stage', 'coupling', p, '--out', str(tmp_path / 'whole')])
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = run(['stage', 'coupling', p, '--out', str(tmp_path / 'cut')], fault='coupling-shard:2')
    assert killed.returncode == -9
    shards = tmp_path / 'cut' / 'coupling'
    assert len(list(shards.glob('shard_*.safetensors'))) == 1 and list(shards.glob('*.tmp'))
    resumed = run(['stage', 'coupling', p, '--out', str(tmp_path / 'cut')])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for k in range(3): same(tmp_path / 'whole', tmp_path / 'cut', f'coupling/shard_{k:05d}.safetensors')
    no_tmp(tmp_path / 'cut')


def test_a_chain_whose_kernel_is_killed_records_it_and_resumes(data, straight, tmp_path):
    """`imdm run`: the stage's kernel dies mid-training; the run is recorded as failed, the chain exits 1; the same
    command again resumes it from its checkpoint to the uninterrupted weights, and its status lists both attempts."""
    chain = write(tmp_path / 'chain.json', {'stages': [{'id': 'teacher', 'notebook': 'lm_train', 'params': train_params(data)}]})
    first = run(['run', chain, '--runs-dir', str(tmp_path / 'runs')], fault='train-step:7')
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-2000:]
    assert 'failed' in first.stderr
    (folder,) = (tmp_path / 'runs').iterdir()
    st = json.loads((folder / 'status.json').read_text())
    assert st['status'] == 'failed' and 'died' in st['error'].lower()
    again = run(['run', chain, '--runs-dir', str(tmp_path / 'runs')])
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert 'it resumes from its checkpoints' in again.stdout and 'resuming from step 6' in again.stdout
    st = json.loads((folder / 'status.json').read_text())
    assert st['status'] == 'done' and [a['status'] for a in st['attempts']] == ['failed', 'done']
    assert 'TCP without encryption' not in first.stderr + again.stderr          # kernels talk over local sockets
    assert '[teacher] step 9/10: loss' in again.stdout                          # the stage's progress, as it runs
    same(straight, folder)
    no_tmp(folder)
    table = run(['runs', '--runs-dir', str(tmp_path / 'runs')])
    assert table.returncode == 0 and '| done |' in table.stdout


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc: each process's parent is the 4th field of its stat)."""
    parent = {}
    for p in Path('/proc').iterdir():
        if p.name.isdigit():
            try: parent[int(p.name)] = int((p / 'stat').read_text().rpartition(')')[2].split()[1])
            except (OSError, ValueError, IndexError): pass
    out, todo = set(), [pid]
    while todo:
        up = todo.pop()
        kids = [c for c, q in parent.items() if q == up]
        out.update(kids); todo += kids
    return out


def wait_gone(pids: set[int], seconds: float) -> set[int]:
    """The pids of `pids` still running (not zombies) after up to `seconds`."""
    import time
    from imdm.core import pid_alive
    t0 = time.monotonic()
    while (live := {p for p in pids if pid_alive(p)}) and time.monotonic() - t0 < seconds: time.sleep(0.1)
    return live


def start_training_chain(data, tmp_path):
    """`imdm run` on a chain whose one stage would train for hours, started in its own process group (as a terminal
    starts a foreground job), returned once the stage's kernel has written its first checkpoint."""
    import time
    long = {**train_params(data), 'train': {**train_params(data)['train'], 'steps': 100_000, 'ckpt_every': 5}}
    chain = write(tmp_path / 'chain.json', {'stages': [{'id': 'teacher', 'notebook': 'lm_train', 'params': long}]})
    proc = subprocess.Popen([str(SCRIPT), 'run', chain, '--runs-dir', str(tmp_path / 'runs')], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    for _ in range(1200):
        if list((tmp_path / 'runs').glob('*/checkpoints/latest.json')): break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    (folder,) = [p for p in (tmp_path / 'runs').iterdir() if p.is_dir()]
    return proc, folder, descendants(proc.pid)


@pytest.mark.parametrize('how', ['ctrl-c', 'sigterm'])
def test_an_interrupted_chain_stops_its_kernel_and_can_resume(how, data, tmp_path):
    """Ctrl-C (SIGINT to the foreground group) or SIGTERM to `imdm run` used to let the stage's kernel, which runs in
    a session of its own, train on to its end. Now the command stops the kernel and everything under it within
    seconds, exits 130, records the run as interrupted, and leaves a checkpoint to resume from."""
    import signal
    proc, folder, below = start_training_chain(data, tmp_path)
    assert below, 'the kernel should be running'
    if how == 'ctrl-c': os.killpg(proc.pid, signal.SIGINT)
    else: proc.send_signal(signal.SIGTERM)
    try: out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill(); os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f'imdm run ignored {how}')
    assert proc.returncode == 130, err[-2000:]
    assert 'interrupted; run the same command again to resume' in err.strip().splitlines()[-1]
    assert 'Traceback' not in err and 'Task exception' not in err, err[-2000:]   # the kernel's abandoned cell prints nothing
    assert not wait_gone(below, 10), 'the kernel (or a process under it) still runs'
    st = json.loads((folder / 'status.json').read_text())
    assert st['status'] == 'interrupted' and st['attempts'][-1]['status'] == 'interrupted'
    latest = json.loads((folder / 'checkpoints' / 'latest.json').read_text())
    assert (folder / 'checkpoints' / latest['path']).is_dir()                 # a whole checkpoint to resume from
    plan = run(['run', str(tmp_path / 'chain.json'), '--runs-dir', str(tmp_path / 'runs'), '--plan'])
    assert plan.returncode == 0 and 'interrupted' in plan.stdout


def test_killed_synthetic_run_leaves_no_workers(tmp_path):
    """`kill -9` of `imdm synthetic` used to leave its worker processes training, writing into the run folder and then
    idling forever. Now its kernel and the workers notice their parent is gone and exit."""
    import signal, time
    proc = subprocess.Popen([str(SCRIPT), 'synthetic', '--seeds', '0', '1', '--runs-dir', str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    try:
        for _ in range(1200):                                  # the kernel, the pool's workers (and its resource tracker)
            if len(below := descendants(proc.pid)) >= 3: break
            time.sleep(0.1)
        assert len(below) >= 3, below
        time.sleep(2.0)                                        # the workers are training
        proc.kill(); proc.wait()
        left = wait_gone(below, 20)
        assert not left, f'processes {sorted(left)} outlived the killed run'
    finally:
        for p in descendants(proc.pid) | below:
            try: os.kill(p, signal.SIGKILL)
            except ProcessLookupError: pass


def test_a_resume_with_other_settings_is_refused(data, tmp_path):
    """`imdm stage` used to resume a folder with another corpus, tokenizer or batch size. Now it names each setting that
    differs, in one line, and changes nothing; the settings a resume may change (steps, logging, device) still resume."""
    p = train_params(data)
    out = tmp_path / 'run'
    killed = run(['stage', 'train', write(tmp_path / 'p.json', p), '--out', str(out)], fault='train-step:5')
    assert killed.returncode == -9
    (tmp_path / 'other.txt').write_text(Path(data['corpus']).read_text()[::-1])
    cases = [({**p, 'batch_size': 8}, 'batch_size 4 vs 8'),
             ({**p, 'data': {**data, 'corpus': str(tmp_path / 'other.txt')}}, f"data.corpus {data['corpus']!r} vs"),
             ({**p, 'data': {**data, 'length': 8}}, 'data.length 16 vs 8'),
             ({**p, 'model': {**p['model'], 'hidden': 64}}, 'model.hidden'),
             ({**p, 'train': {**p['train'], 'lr': 5e-3}}, 'train.lr 0.001 vs 0.005')]
    before = {f: f.read_bytes() for f in out.rglob('*') if f.is_file()}
    for params, message in cases:
        again = run(['stage', 'train', write(tmp_path / 'q.json', params), '--out', str(out)])
        lines = again.stderr.strip().splitlines()
        assert again.returncode == 2 and 'started with other settings' in lines[-1] and message in lines[-1], (message, again.stderr[-1500:])
    assert {f: f.read_bytes() for f in out.rglob('*') if f.is_file()} == before
    longer = run(['stage', 'train', write(tmp_path / 'r.json', {**p, 'train': {**p['train'], 'steps': 12, 'log_every': 4}}), '--out', str(out)])
    assert longer.returncode == 0 and 'resuming from step' in longer.stdout, longer.stderr[-2000:]


@pytest.mark.parametrize('change, message', [
    ({'model': {'preset': 'micro', 'hidden': 1_000_000, 'n_heads': 1000}}, 'GiB free: choose a smaller model'),
    ({'val_batches': 10_000}, 'val_batches=10000 exceeds the'),
    ({'batch_size': 100_000}, 'a global batch of 100000 exceeds the'),
    ({'kind': 'imdm', 'noise': {'dim': 100_000_000}}, 'GiB free: choose a smaller noise dim'),
])
def test_sizes_are_bounded_before_any_work(change, message, data, tmp_path):
    """A model width that cannot fit, more validation batches than the split holds, or a batch beyond the data used
    to allocate, repeat blocks silently or fail deep inside torch; now each is one line that names the number."""
    p = write(tmp_path / 'p.json', {**train_params(data), **change})
    out = run(['stage', 'train', p, '--out', str(tmp_path / 'run')])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and message in lines[-1], out.stderr[-2000:]
    assert not list((tmp_path / 'run').glob('checkpoints/*'))              # nothing trained


@pytest.mark.parametrize('stage, params, message', [
    ('di4c', {'di4c': {'latents': 10**7}, 'batch_size': 4}, 'GiB free: choose fewer latents or a smaller batch'),
    ('sdtt', {'student': 'imdm', 'noise': {'dim': 100_000_000}, 'batch_size': 4, 'sdtt': {'teacher_steps': 4, 'rounds': 1}},
     'GiB free: choose a smaller noise dim'),
])
def test_distillation_sizes_are_bounded_before_any_work(stage, params, message, data, straight, tmp_path):
    """Di4C's latents and an IMDM student's noise dimension multiply its memory; both are estimated before anything is allocated."""
    p = write(tmp_path / 'p.json', {'teacher': str(straight), 'data': data, 'device': 'cpu', 'train': {'steps': 2, 'warmup': 1}, **params})
    out = run(['stage', stage, p, '--out', str(tmp_path / 'run')])
    assert out.returncode == 2 and message in out.stderr.strip().splitlines()[-1], out.stderr[-2000:]
    assert not list((tmp_path / 'run').glob('checkpoints/*'))


def test_a_start_that_failed_before_any_work_binds_nothing(data, tmp_path):
    """A stage whose data could not be read used to leave its settings.json behind, and the corrected command was then
    refused as a resume with other settings. A folder that holds no work yet takes the new settings."""
    p = train_params(data)
    out = tmp_path / 'run'
    bad = run(['stage', 'train', write(tmp_path / 'bad.json', {**p, 'data': {**data, 'corpus': str(tmp_path / 'nosuch.txt')}}), '--out', str(out)])
    assert bad.returncode == 2 and 'nosuch.txt' in bad.stderr.strip().splitlines()[-1], bad.stderr[-1500:]
    good = run(['stage', 'train', write(tmp_path / 'good.json', p), '--out', str(out)])
    assert good.returncode == 0, good.stderr[-2000:]
