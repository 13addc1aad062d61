"""Bad input, as a careful new user types it: every case must end in exit status 2, one line on stderr that names
the bad value, and nothing made or changed on disk. The commands run in this process (`imdm.cli.main`), so the
table of well over 100 cases takes seconds; `test_cli.py` checks the installed command itself."""
import contextlib
import io
import json
import os
import re
from pathlib import Path

import pytest
import torch

from imdm.cli import main
from imdm.dit import DiT, dit_config
from imdm.ar import ARLM
from imdm.denoisers import Denoiser
from imdm.forward import NoiseSpec
from imdm.checkpoints import save_model

# ---------------------------------------------------------------- fixtures: saved models, good and broken


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch):
    """A case that got past the checks would start a notebook: fail at once instead of running it."""
    import papermill
    def refuse(*a, **k): raise AssertionError('a bad input got past the checks and started a notebook')
    monkeypatch.setattr(papermill, 'execute_notebook', refuse)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp('models')
    cfg = dit_config('micro', vocab_size=20, length=128)                             # DataConfig's default length
    save_model(Denoiser(DiT(cfg), 19), d / 'mdlm')
    save_model(Denoiser(DiT(cfg), 19, NoiseSpec(dim=4)), d / 'imdm' / 'model')         # a stage folder
    save_model(ARLM(cfg), d / 'ar')
    for name, damage in [('truncated', lambda b: b[:-64]), ('empty', lambda b: b'')]:
        save_model(Denoiser(DiT(cfg), 19), d / name)
        f = d / name / 'model.safetensors'
        f.write_bytes(damage(f.read_bytes()))
    save_model(Denoiser(DiT(cfg), 19), d / 'reshaped')                                  # config and weights disagree
    c = json.loads((d / 'reshaped' / 'config.json').read_text())
    c['model']['dit']['hidden'] = 128
    (d / 'reshaped' / 'config.json').write_text(json.dumps(c))
    (d / 'garbled').mkdir()
    (d / 'garbled' / 'config.json').write_text('{"model": ')
    (d / 'empty_folder').mkdir()
    (d / 'coupling_less').mkdir()
    return {k: str(d / k) for k in ('mdlm', 'imdm', 'ar', 'truncated', 'empty', 'reshaped', 'garbled', 'empty_folder', 'coupling_less')}


def _chain(notebook, params, **extra):
    return {'stages': [{'id': 'a', 'notebook': notebook, 'params': params}], **extra}


def _train(**params):
    return _chain('lm_train', params)


def _sdtt(m, **params):
    return _chain('lm_sdtt', {'teacher': m['mdlm'], **params})


def _redi(m, **params):
    return _chain('lm_redi', {'teacher': m['mdlm'], 'student': 'imdm', **params})


def _eval(m, **params):
    return _chain('lm_eval', {'models': {'A': m['mdlm']}, 'judge': m['ar'], **params})


def _two(first, notebook, params, then, then_params):
    """A stage, and a second one that names it as '@first'."""
    return {'stages': [{'id': first, 'notebook': notebook, 'params': params}, {'id': 'b', 'notebook': then, 'params': then_params}]}


# ---------------------------------------------------------------- the table
# each case: (id, what the user runs, text the one-line message must contain). A chain is written to chain.json
# and run with `imdm run chain.json`; a list is a command line, in which {mdlm} etc. name the saved models.

CHAINS = [
    ('chain-not-json', '{"stages": [', 'is not valid JSON'),
    ('chain-empty-file', '', 'is not valid JSON'),
    ('chain-duplicate-key', '{"stages": [{"id": "a", "id": "b", "notebook": "lm_train", "params": {}}]}', "key 'id' appears twice in one object"),
    ('chain-duplicate-param', '{"stages": [{"id": "a", "notebook": "lm_train", "params": {"batch_size": 4, "batch_size": 8}}]}', "key 'batch_size' appears twice"),
    ('chain-is-list', [], 'a chain is a JSON object'),
    ('chain-no-stages', {}, 'stages=None must be a non-empty list'),
    ('chain-stages-empty', {'stages': []}, 'stages=[] must be a non-empty list'),
    ('chain-stages-dict', {'stages': {'a': 1}}, "stages={'a': 1} must be a non-empty list"),
    ('chain-unknown-key', {'stages': [{'id': 'a', 'notebook': 'lm_train'}], 'stagse': []}, "unknown keys ['stagse']"),
    ('chain-shared-not-dict', {'shared': [1], 'stages': [{'id': 'a', 'notebook': 'lm_train'}]}, 'shared=[1] must be an object'),
    ('chain-shared-bad-name', {'shared': {'a b': 1}, 'stages': [{'id': 'a', 'notebook': 'lm_train'}]}, "'a b' is not allowed"),
    ('chain-compare-not-pairs', {'compare': ['IM-SDTT'], 'stages': [{'id': 'a', 'notebook': 'lm_train'}]}, "compare=['IM-SDTT'] must be a list of [IMDM student, MDLM student] pairs"),
    ('chain-compare-triple', {'compare': [['a', 'b', 'c']], 'stages': [{'id': 'a', 'notebook': 'lm_train'}]}, 'pairs of evaluated model names'),
    ('stage-not-object', {'stages': ['lm_train']}, "stage 0 must be an object"),
    ('stage-no-id', {'stages': [{'notebook': 'lm_train'}]}, "stage 0 has no 'id'"),
    ('stage-id-space', {'stages': [{'id': 'my stage', 'notebook': 'lm_train'}]}, "'my stage' is not allowed"),
    ('stage-id-number', {'stages': [{'id': 3, 'notebook': 'lm_train'}]}, "stage id 3 is not allowed"),
    ('stage-id-repeated', {'stages': [{'id': 'a', 'notebook': 'lm_train'}, {'id': 'a', 'notebook': 'lm_eval'}]}, "stage id 'a' is repeated"),
    ('stage-unknown-key', {'stages': [{'id': 'a', 'notebook': 'lm_train', 'param': {}}]}, "unknown keys ['param']"),
    ('stage-notebook-unknown', _chain('lm_fly', {}), "notebook='lm_fly'"),
    ('stage-notebook-missing', {'stages': [{'id': 'a'}]}, 'notebook=None'),
    ('stage-notebook-path', _chain('/tmp/x.ipynb', {}), "notebook='/tmp/x.ipynb'"),
    ('stage-notebook-traversal', _chain('../../etc/passwd', {}), "notebook='../../etc/passwd'"),
    ('stage-params-list', _chain('lm_train', [1]), 'params=[1] must be an object'),
    ('stage-takes-bad', {'stages': [{'id': 'a', 'notebook': 'lm_train', 'takes': 'data'}]}, "takes='data' must be a list"),
    ('param-injection', _train(**{'kind\nopen("PWNED", "w")\nx': 1}), 'is not allowed: names are letters'),
    ('param-name-space', _train(**{'batch size': 3}), "'batch size' is not allowed"),
    ('param-name-keyword', _train(**{'class': 3}), "'class' is not allowed"),
    ('param-unknown', _train(batchsize=3), "unknown keys ['batchsize']"),
    ('train-schedule-unknown', _train(schedule='linear'), "schedule='linear' is not allowed"),
    ('train-ar-schedule', _train(kind='ar', schedule='cosine'), "kind='ar' has none"),
    ('ref-later-stage', {'stages': [{'id': 'a', 'notebook': 'lm_eval', 'params': {'models': {'A': '@b'}, 'judge': '@b'}},
                                    {'id': 'b', 'notebook': 'lm_train'}]}, "names ['@b'], which are not earlier stages"),
    ('ref-unknown-stage', _chain('lm_sdtt', {'teacher': '@teacher'}), "names ['@teacher']"),
    ('train-kind', _train(kind='transformer'), "kind='transformer' is not allowed"),
    ('train-lr-infinity', _train(train={'lr': float('inf')}), 'lr=inf must be a finite number'),
    ('train-lr-nan', _train(train={'lr': float('nan')}), 'lr=nan must be a finite number'),
    ('train-lr-negative', _train(train={'lr': -1}), 'lr=-1'),
    ('train-lr-zero', _train(train={'lr': 0}), 'lr=0'),
    ('train-lr-string', _train(train={'lr': 'fast'}), "lr='fast' must be float"),
    ('train-steps-zero', _train(train={'steps': 0}), 'steps=0 must be an integer >= 1'),
    ('train-seed-negative', _train(train={'seed': -1}), 'seed=-1 must be an integer in [0, 4294967295]'),
    ('train-steps-float', _train(train={'steps': 2.5}), 'steps=2.5 must be int'),
    ('train-steps-bool', _train(train={'steps': True}), 'steps=True must be int'),
    ('train-steps-string', _train(train={'steps': '100'}), "steps='100' must be int"),
    ('train-warmup-negative', _train(train={'warmup': -1}), 'warmup=-1 must be an integer >= 0'),
    ('train-schedule', _train(train={'lr_schedule': 'linear'}), "lr_schedule='linear' is not allowed"),
    ('train-ema', _train(train={'ema': 2}), 'ema=2'),
    ('train-grad-clip', _train(train={'grad_clip': 0}), 'grad_clip=0'),
    ('train-accumulate', _train(train={'accumulate': 0}), 'accumulate=0'),
    ('train-log-every', _train(train={'log_every': 0}), 'log_every=0'),
    ('train-ckpt-every', _train(train={'ckpt_every': 0}), 'ckpt_every=0'),
    ('train-keep', _train(train={'keep_checkpoints': 0}), 'keep_checkpoints=0'),
    ('train-beta1', _train(train={'beta1': 1.5}), 'beta1=1.5'),
    ('train-weight-decay', _train(train={'weight_decay': -0.1}), 'weight_decay=-0.1'),
    ('train-seed-string', _train(train={'seed': 'x'}), "seed='x' must be int"),
    ('train-unknown', _train(train={'stpes': 3}), "unknown keys ['stpes']"),
    ('train-not-dict', _train(train=[1]), 'train=[1] must be a dict of TrainConfig settings'),
    ('train-ema-one', _train(train={'ema': 1.0}), 'ema=1.0 must lie in'),
    ('train-beta1-one', _train(train={'beta1': 1.0}), 'beta1=1.0 must lie in'),
    ('synthetic-models-empty', _chain('synthetic', {'models': []}), 'models=[] names no model'),
    ('synthetic-models-repeated', _chain('synthetic', {'models': ['MDM teacher', 'MDM teacher']}), "repeats 'MDM teacher'"),
    ('synthetic-sampler-steps-repeated', _chain('synthetic', {'sampler_steps': [1, 1]}), 'sampler_steps=[1, 1] repeats 1'),
    ('batch-size-zero', _train(batch_size=0), 'batch_size=0 must be an integer >= 1'),
    ('batch-size-negative', _train(batch_size=-3), 'batch_size=-3'),
    ('val-batches-negative', _train(val_batches=-1), 'val_batches=-1 must be an integer >= 1'),
    ('val-batches-zero', _train(val_batches=0), 'val_batches=0'),
    ('device-tpu', _train(device='tpu'), "device='tpu'"),
    ('device-cuda', _train(device='cuda'), "device='cuda'"),
    ('device-cuda-7', _train(device='cuda:7'), "device='cuda:7'"),
    ('device-number', _train(device=0), 'device=0 must be str'),
    ('model-preset', _train(model={'preset': 'huge'}), "preset='huge' is not allowed"),
    ('model-hidden', _train(model={'hidden': 0}), 'hidden=0'),
    ('model-heads', _train(model={'hidden': 64, 'n_heads': 5}), 'hidden=64 must be a multiple of n_heads=5'),
    ('model-dropout', _train(model={'dropout': 2}), 'dropout=2'),
    ('model-unknown', _train(model={'layers': 3}), "unknown keys ['layers']"),
    ('data-length', _train(data={'length': 2}), 'length=2'),
    ('data-mode', _train(data={'mode': 'packed'}), "mode='packed' is not allowed"),
    ('data-unknown', _train(data={'corpora': 'x'}), "unknown keys ['corpora']"),
    ('data-string', _train(data='wikitext2'), "data='wikitext2' must be a dict of DataConfig settings"),
    ('data-trim-string', _train(data={'trim_vocab': 'yes'}), "trim_vocab='yes' must be bool"),
    ('noise-kind', _train(kind='imdm', noise={'kind': 'pink'}), "'pink'"),
    ('noise-dim', _train(kind='imdm', noise={'dim': 0}), 'dim=0'),
    ('noise-scale', _train(kind='imdm', noise={'scale': -1}), 'scale=-1'),
    ('mask-mlp', _train(kind='imdm', mask_mlp='big'), "mask_mlp='big' is not allowed"),
]

MODEL_CHAINS = [      # chains that name saved models (built by the fixture)
    ('init-missing', lambda m: _train(init=m['mdlm'] + '-nowhere'), 'is not a saved model'),
    ('init-empty-folder', lambda m: _train(init=m['empty_folder']), 'is not a saved model'),
    ('init-ar-for-mdlm', lambda m: _train(init=m['ar']), 'is an autoregressive model; init must be a diffusion model'),
    ('init-mdlm-for-ar', lambda m: _train(kind='ar', init=m['mdlm']), 'is a diffusion model (MDLM or IMDM); init must be an autoregressive model'),
    ('init-imdm-for-mdlm', lambda m: _train(init=m['imdm']), "kind='mdlm' cannot start from it"),
    ('init-truncated', lambda m: _train(init=m['truncated']), 'is truncated'),
    ('init-empty-weights', lambda m: _train(init=m['empty']), 'is damaged or empty'),
    ('init-reshaped', lambda m: _train(init=m['reshaped']), 'has shape [20, 64], its config.json builds [20, 128]'),
    ('init-garbled-config', lambda m: _train(init=m['garbled']), 'is not the config of a saved workbench model'),
    ('di4c-teacher-imdm', lambda m: _chain('lm_di4c', {'teacher': m['imdm']}), 'is an IMDM; Di4C distils an MDLM'),
    ('di4c-latents', lambda m: _chain('lm_di4c', {'teacher': m['mdlm'], 'di4c': {'latents': 0}}), 'latents=0'),
    ('di4c-alpha', lambda m: _chain('lm_di4c', {'teacher': m['mdlm'], 'di4c': {'alpha_t': 'cosine'}}), "alpha_t='cosine' is not allowed"),
    ('eval-cond-length', lambda m: _eval(m, mauve_prefix=50, cond_length=40), 'cond_length=40 must be an integer >= 51'),
    ('sdtt-teacher-missing', lambda m: _chain('lm_sdtt', {'teacher': '/nowhere/teacher'}), "teacher='/nowhere/teacher' is not a saved model"),
    ('sdtt-teacher-empty', lambda m: _chain('lm_sdtt', {'teacher': ''}), "teacher='' must name a saved model"),
    ('sdtt-teacher-ar', lambda m: _chain('lm_sdtt', {'teacher': m['ar']}), 'teacher must be a diffusion model'),
    ('sdtt-teacher-truncated', lambda m: _chain('lm_sdtt', {'teacher': m['truncated']}), 'is truncated'),
    ('sdtt-init-ar', lambda m: _sdtt(m, init=m['ar']), 'init must be a diffusion model'),
    ('sdtt-mdlm-from-imdm', lambda m: _chain('lm_sdtt', {'teacher': m['imdm']}), "student='mdlm' cannot start from it"),
    ('sdtt-student', lambda m: _sdtt(m, student='gpt'), "student='gpt' is not allowed"),
    ('sdtt-rounds', lambda m: _sdtt(m, sdtt={'rounds': 0}), 'rounds=0'),
    ('sdtt-teacher-steps', lambda m: _sdtt(m, sdtt={'teacher_steps': 1}), 'teacher_steps=1'),
    ('sdtt-too-many-rounds', lambda m: _sdtt(m, sdtt={'teacher_steps': 8, 'rounds': 5}), 'teacher_steps'),
    ('sdtt-draws', lambda m: _sdtt(m, sdtt={'draws': 'random'}), "draws='random' is not allowed"),
    ('sdtt-divergence', lambda m: _sdtt(m, sdtt={'divergence': 'js'}), "divergence='js' is not allowed"),
    ('sdtt-t-eps', lambda m: _sdtt(m, sdtt={'t_eps': 0}), 't_eps=0'),
    ('sdtt-train-lr', lambda m: _sdtt(m, train={'lr': float('inf')}), 'train.lr=inf must be a finite number'),
    ('sdtt-batch', lambda m: _sdtt(m, batch_size=0), 'batch_size=0'),
    ('redi-pairs', lambda m: _redi(m, redi={'pairs': 0}), 'pairs=0'),
    ('redi-rounds', lambda m: _redi(m, redi={'rounds': -1}), 'rounds=-1'),
    ('redi-draws', lambda m: _redi(m, redi={'draws': 'random'}), "draws='random'"),
    ('redi-bridge', lambda m: _redi(m, redi={'bridge': 'yes'}), "bridge='yes' must be bool"),
    ('redi-perturbation', lambda m: _redi(m, redi={'perturbation': 'gauss'}), "perturbation='gauss' is not allowed"),
    ('redi-unknown', lambda m: _redi(m, redi={'pair': 3}), "unknown keys ['pair']"),
    ('redi-coupling-folder', lambda m: _redi(m, coupling=m['coupling_less']), 'has no coupling/ folder'),
    ('redi-noise-dim', lambda m: _redi(m, noise={'dim': -4}), 'dim=-4'),
    ('coupling-teacher-ar', lambda m: _chain('lm_coupling', {'teacher': m['ar']}), 'teacher must be a diffusion model'),
    ('coupling-seed', lambda m: _chain('lm_coupling', {'teacher': m['mdlm'], 'seed': 'x'}), "seed='x' must be int"),
    ('coupling-student', lambda m: _chain('lm_coupling', {'teacher': m['mdlm'], 'student': 'ar'}), "student='ar' is not allowed"),
    ('coupling-device', lambda m: _chain('lm_coupling', {'teacher': m['mdlm'], 'device': 'tpu'}), "device='tpu'"),
    ('eval-models-empty', lambda m: _eval(m, models={}), 'models must name at least one model'),
    ('eval-steps-huge', lambda m: _eval(m, sampler_steps=[2, 10**9]), 'sampler_steps=1000000000 must be an integer in [1, 65536]'),
    ('eval-steps-over-limit', lambda m: _eval(m, sampler_steps=[65537]), 'sampler_steps=65537 must be an integer in [1, 65536]'),
    ('eval-seed-huge', lambda m: _eval(m, seed=2**40), 'seed=1099511627776 must be an integer in [0, 4294967295]'),
    ('coupling-seed-huge', lambda m: _chain('lm_coupling', {'teacher': m['mdlm'], 'seed': 2**40}), 'seed=1099511627776 must be an integer in'),
    ('eval-models-list', lambda m: _eval(m, models=[m['mdlm']]), 'models=[' ),
    ('eval-model-missing', lambda m: _eval(m, models={'A': '/nowhere'}), "models['A']='/nowhere' is not a saved model"),
    ('eval-model-ar', lambda m: _eval(m, models={'A': m['ar']}), "models['A']="),
    ('eval-model-empty-weights', lambda m: _eval(m, models={'A': m['empty']}), 'is damaged or empty'),
    ('eval-judge-diffusion', lambda m: _eval(m, judge=m['mdlm']), 'judge must be an autoregressive model'),
    ('eval-judge-empty', lambda m: _eval(m, judge=''), "judge must be a saved AR model"),
    ('eval-judge-missing', lambda m: _eval(m, judge='/nowhere/judge'), "judge='/nowhere/judge' is not a saved model"),
    ('eval-steps-empty', lambda m: _eval(m, sampler_steps=[]), 'sampler_steps must list at least one step count'),
    ('eval-steps-zero', lambda m: _eval(m, sampler_steps=[0, 2]), 'sampler_steps=0'),
    ('eval-steps-int', lambda m: _eval(m, sampler_steps=4), 'steps=4 must be list'),
    ('eval-samples-zero', lambda m: _eval(m, samples=0), 'samples=0 must be an integer >= 1'),
    ('eval-samples-negative', lambda m: _eval(m, samples=-5), 'samples=-5'),
    ('eval-batch', lambda m: _eval(m, batch_size=0), 'batch_size=0'),
    ('eval-draws', lambda m: _eval(m, draws='random'), "draws='random'"),
    ('eval-mask-state', lambda m: _eval(m, mask_state='fresh'), "mask_state='fresh'"),
    ('eval-mauve-features', lambda m: _eval(m, mauve_features='bert'), "mauve_features='bert' is not allowed"),
    ('eval-mauve-prompts', lambda m: _eval(m, mauve_prompts=-1), 'mauve_prompts=-1'),
    ('eval-judge-length', lambda m: _eval(m, judge_max_length=0), 'judge_max_length=0'),
    # a stage named by '@id' must make what the parameter takes, checked at plan time, before any stage runs
    ('ref-judge-diffusion', lambda m: _two('t', 'lm_train', {}, 'lm_eval', {'models': {'A': m['mdlm']}, 'judge': '@t'}),
     "judge='@t' names stage 't', which makes a diffusion model (MDLM or IMDM); judge takes an autoregressive model"),
    ('ref-model-ar', lambda m: _two('t', 'lm_train', {'kind': 'ar'}, 'lm_eval', {'models': {'A': '@t'}, 'judge': m['ar']}),
     "models['A']='@t' names stage 't', which makes an autoregressive model"),
    ('ref-extends-model', lambda m: _two('t', 'lm_train', {}, 'lm_coupling', {'teacher': m['mdlm'], 'extends': '@t'}),
     'extends takes a coupling'),
    ('ref-coupling-eval', lambda m: _two('e', 'lm_eval', {'models': {'A': m['mdlm']}, 'judge': m['ar']}, 'lm_redi',
                                         {'teacher': m['mdlm'], 'coupling': '@e'}), "which makes an evaluation; coupling takes a coupling"),
    ('ref-match-entropy-model', lambda m: _two('t', 'lm_train', {}, 'lm_eval', {'models': {'A': m['mdlm']}, 'judge': m['ar'], 'match_entropy': '@t'}),
     'match_entropy takes an evaluation'),
    ('ref-teacher-coupling', lambda m: _two('c', 'lm_coupling', {'teacher': m['mdlm']}, 'lm_sdtt', {'teacher': '@c'}),
     "teacher='@c' names stage 'c', which makes a coupling"),
    ('sdtt-mdlm-noise', lambda m: _sdtt(m, noise={'dim': 4}), "is an IMDM student's; student='mdlm' has none"),
    ('coupling-mdlm-noise', lambda m: _chain('lm_coupling', {'teacher': m['mdlm'], 'student': 'mdlm', 'noise': {'dim': 4}}),
     "a coupling for student='mdlm' has sources without noise"),
    ('coupling-teacher-length', lambda m: _chain('lm_coupling', {'teacher': m['mdlm'], 'data': {'length': 64}}),
     'was trained on blocks of 128 tokens; data.length=64'),
    ('sdtt-teacher-length', lambda m: _sdtt(m, data={'length': 32}), 'was trained on blocks of 128 tokens; data.length=32'),
    ('di4c-teacher-length', lambda m: _chain('lm_di4c', {'teacher': m['mdlm'], 'data': {'length': 32}}), 'data.length=32'),
    ('eval-cond-length-over-blocks', lambda m: _eval(m, mauve_prompts=8, cond_length=200), 'cond_length=200 is longer than the data'),
    ('eval-steps-repeated', lambda m: _eval(m, sampler_steps=[2, 4, 2]), 'sampler_steps=[2, 4, 2] repeats 2'),
    ('sdtt-steps-per-target', lambda m: _sdtt(m, sdtt={'steps_per_target': 1}), 'steps_per_target=1 must be an integer >= 2'),
    ('sdtt-t-eps-one', lambda m: _sdtt(m, sdtt={'t_eps': 1.0}), 't_eps=1.0 must lie in'),
    ('redi-t-eps', lambda m: _redi(m, redi={'t_eps': 1.0}), 't_eps=1.0 must lie in'),
    ('redi-t-eps-zero', lambda m: _redi(m, redi={'t_eps': 0}), 't_eps=0 must lie in'),
]

COMMANDS = [         # command lines (run in a scratch folder holding `afile`, a plain file)
    ('run-unknown-chain', ['run', 'no-such-chain'], "unknown chain 'no-such-chain'"),
    ('run-chain-folder', ['run', '.'], "chain '.' is a folder"),
    ('run-only-unknown', ['run', 'lm1b-cpu', '--only', 'teachr'], "--only names ['teachr']"),
    ('run-jobs-zero', ['run', 'lm1b-cpu', '--jobs', '0'], 'jobs=0 must be an integer >= 1'),
    ('run-runs-dir-file', ['run', 'lm1b-cpu', '--runs-dir', 'afile'], "--runs-dir 'afile' is a file"),
    ('run-runs-dir-under-file', ['run', 'lm1b-cpu', '--runs-dir', 'afile/runs'], "runs_dir='afile/runs' cannot be created"),
    ('runs-dir-missing', ['runs', '--runs-dir', 'nowhere'], "--runs-dir 'nowhere' is not a folder"),
    ('runs-dir-file', ['runs', '--runs-dir', 'afile'], "--runs-dir 'afile' is not a folder"),
    ('rekey-dir-missing', ['rekey', '--runs-dir', 'nowhere'], "--runs-dir 'nowhere' is not a folder of runs"),
    ('synthetic-unknown-set', ['synthetic', '--set', 'noise_dimm=3'], "unknown keys ['noise_dimm']"),
    ('synthetic-task-explodes', ['synthetic', '--task-args', 'L=40', 'K=2'], 'K**L = 1,099,511,627,776 sequences'),
    ('synthetic-parity-explodes', ['synthetic', '--task', 'parity', '--task-args', 'L=64'], 'at most 65,536 are allowed'),
    ('synthetic-steps-huge', ['synthetic', '--set', 'sampler_steps=[1, 1000000000]'], 'must be an integer in [1, 65536]'),
    ('synthetic-set-no-equals', ['synthetic', '--set', 'noise_dim'], "--set 'noise_dim' must look like key=value"),
    ('synthetic-set-bad-name', ['synthetic', '--set', 'noise dim=3'], "'noise dim' is not a parameter name"),
    ('synthetic-lr-infinity', ['synthetic', '--set', 'lr=Infinity'], 'lr=inf must be a finite number'),
    ('synthetic-lr-string', ['synthetic', '--set', 'lr=fast'], "lr='fast' must be float"),
    ('synthetic-seeds-empty', ['synthetic', '--set', 'seeds=[]'], 'seeds must name at least one seed'),
    ('synthetic-seeds-repeated', ['synthetic', '--seeds', '0', '0'], 'seeds=[0, 0] repeats a seed'),
    ('synthetic-seeds-negative', ['synthetic', '--seeds', '-1'], 'seeds=-1'),
    ('synthetic-task', ['synthetic', '--task', 'xor'], "'xor'"),
    ('synthetic-task-args-key', ['synthetic', '--task-args', 'M=3'], "has no arguments ['M']; it takes ['L', 'K']"),
    ('synthetic-task-args-value', ['synthetic', '--task', 'parity', '--task-args', 'L=x'], "L='x'"),
    ('synthetic-task-args-small', ['synthetic', '--task-args', 'K=1'], 'K=1 must be an integer >= 2'),
    ('synthetic-draws', ['synthetic', '--set', 'draws=maybe'], "draws='maybe' is not allowed"),
    ('synthetic-device', ['synthetic', '--set', 'device=cuda'], "device='cuda'"),
    ('synthetic-batch', ['synthetic', '--set', 'batch_size=0'], 'batch_size=0'),
    ('synthetic-samples', ['synthetic', '--set', 'samples=-1'], 'samples=-1'),
    ('synthetic-sdtt-steps', ['synthetic', '--set', 'sdtt_teacher_steps=3'], 'sdtt_teacher_steps=3 must be a power of 2'),
    ('synthetic-models', ['synthetic', '--set', 'models=["GPT"]'], "model='GPT' is not allowed"),
    ('synthetic-sampler-steps-none', ['synthetic', '--set', 'sampler_steps=[]'], 'sampler_steps must list at least one'),
    ('synthetic-noise-kind', ['synthetic', '--set', 'noise_kind=pink'], "noise_kind='pink'"),
    ('synthetic-noise-dim', ['synthetic', '--set', 'noise_dim=0'], 'noise_dim=0 must be an integer >= 1'),
    ('synthetic-noise-scale', ['synthetic', '--set', 'noise_scale=0'], 'noise_scale=0'),
    ('synthetic-model-size', ['synthetic', '--set', 'model_size=huge'], "model_size='huge' is not allowed"),
    ('synthetic-smoke-set', ['synthetic', '--set', 'smoke=1'], 'smoke=1 must be bool'),
    ('synthetic-sweep-bad-value', ['synthetic', '--sweep', 'noise_dim=0,4'], 'dim=0'),
    ('synthetic-sweep-empty', ['synthetic', '--sweep', 'noise_dim='], "--sweep 'noise_dim=' must look like KEY=V1,V2"),
    ('synthetic-sweep-unknown', ['synthetic', '--sweep', 'noise_dimm=4,8'], "unknown keys ['noise_dimm']"),
    ('synthetic-runs-dir-file', ['synthetic', '--smoke', '--runs-dir', 'afile'], "--runs-dir 'afile' is a file"),
    ('bench-steps', ['bench', '--steps', '0'], 'steps=0 must be an integer >= 1'),
    ('bench-batch', ['bench', '--batch', '0'], 'batch=0'),
    ('bench-vocab', ['bench', '--vocab-size', '1'], 'vocab-size=1 must be an integer >= 2'),
    ('bench-length', ['bench', '--length', '-4'], 'length=-4'),
    ('bench-noise-dim', ['bench', '--noise-dim', '0'], 'noise-dim=0'),
    ('bench-repeats', ['bench', '--repeats', '0'], 'repeats=0'),
    ('bench-preset', ['bench', '--preset', 'huge'], "preset='huge' is not allowed"),
    ('bench-device-tpu', ['bench', '--device', 'tpu'], "device='tpu'"),
    ('bench-device-cuda', ['bench', '--device', 'cuda'], "device='cuda'"),
    ('bench-memory', ['bench', '--batch', '100000', '--vocab-size', '50000', '--length', '1024'], 'GiB'),
    ('bench-noise-dim-memory', ['bench', '--noise-dim', '100000000000', '--vocab-size', '64', '--length', '16'], 'use a smaller batch or noise dimension'),
    ('stage-unknown', ['stage', 'fly', 'afile', '--out', 'out'], "stage='fly' is not allowed"),
    ('stage-params-missing', ['stage', 'train', 'nowhere.json', '--out', 'out'], 'nowhere.json'),
    ('stage-params-not-json', ['stage', 'train', 'afile', '--out', 'out'], 'afile is not valid JSON'),
    ('stage-out-file', ['stage', 'train', 'params.json', '--out', 'afile'], "--out 'afile' is a file"),
    ('stage-bad-param', ['stage', 'train', 'bad_params.json', '--out', 'out'], 'train: steps=0'),
    ('readme-outside-repo', ['readme', '--check'], 'no settings.ini'),
    ('stage-duplicate-key', ['stage', 'train', 'dup.json', '--out', 'out'], "dup.json: key 'steps' appears twice in one object"),
    ('sweep-duplicate-key', ['sweep', 'dup.json', '--plan'], "key 'steps' appears twice in one object"),
    ('runs-dir-empty', ['runs', '--runs-dir', ''], "--runs-dir '' is empty"),
    ('run-runs-dir-empty', ['run', 'lm1b-cpu', '--plan', '--runs-dir', ''], "--runs-dir '' is empty"),
    ('analyse-out-empty', ['analyse', 'draws', '--out', ''], "--out '' is empty"),
    ('sweep-out-empty', ['sweep', 'table3-synthetic', '--gather', '--out', ''], "--out '' is empty"),
    ('stage-out-empty', ['stage', 'train', 'params.json', '--out', ''], "--out '' is empty"),
    # settings are merged or refused, never dropped (a second --set replaced the first; --out without --sweep did nothing)
    ('synthetic-set-twice', ['synthetic', '--set', 'seeds=[0]', '--set', 'seeds=[1]'], "--set gives 'seeds' twice"),
    ('synthetic-set-twice-in-one', ['synthetic', '--set', 'noise_dim=8', 'noise_dim=16'], "--set gives 'noise_dim' twice"),
    ('synthetic-sets-add-up', ['synthetic', '--set', 'noise_dim=8', '--set', 'noise_dim=0'], "--set gives 'noise_dim' twice"),
    ('synthetic-second-set-checked', ['synthetic', '--set', 'noise_dim=8', '--set', 'coupling_pairs=0'], 'coupling_pairs=0 must be'),
    ('gpucheck-set-twice', ['gpucheck', '--scale', 'cpu', '--set', 'noise_dim=8', '--set', 'noise_dim=16'], "--set gives 'noise_dim' twice"),
    ('synthetic-out-without-sweep', ['synthetic', '--out', 'x.json'], "--out 'x.json' is for --sweep only"),
    ('synthetic-sweep-no-key', ['synthetic', '--sweep', '=1,2'], "--sweep '=1,2' must look like KEY=V1,V2"),
    ('synthetic-sweep-text-value', ['synthetic', '--sweep', 'task=equal,nosuch'], "unknown synthetic task 'nosuch'"),
    ('synthetic-sweep-bad-key', ['synthetic', '--sweep', 'no-such=1,2'], "--sweep 'no-such=1,2' must look like KEY=V1,V2"),
    # a plan checks what a run would
    ('run-plan-bad-param', ['run', 'bad_chain.json', '--plan'], "stage 'a' (lm_train)"),
    ('run-plan-bad-only', ['run', 'lm1b-cpu', '--plan', '--only', 'nosuch'], "--only names ['nosuch']"),
    ('run-plan-bad-jobs', ['run', 'lm1b-cpu', '--plan', '--jobs', '0'], 'jobs=0 must be an integer >= 1'),
    ('sweep-plan-bad-jobs', ['sweep', 'table3-synthetic', '--plan', '--jobs', '0'], 'jobs=0 must be an integer >= 1'),
    # files and folders
    ('data-check-nosuch', ['data', 'check', 'nosuch'], "data folder 'nosuch' is not a folder"),
    ('gpucheck-out-under-file', ['gpucheck', '--scale', 'cpu', '--out', 'afile/r.json'], "is a file"),
    ('stage-out-under-file', ['stage', 'train', 'params.json', '--out', 'afile/sub'], "cannot be made"),
    ('stage-out-other-finished-stage', ['stage', 'train', 'params.json', '--out', 'finished'], "holds a finished eval stage, not a train stage"),
    ('gpucheck-out-folder', ['gpucheck', '--scale', 'cpu', '--out', 'folder'], "is a folder; give the report's file name"),
    ('run-only-nothing', ['run', 'lm1b-cpu', '--only'], '--only names no stage'),
    ('run-plan-only-nothing', ['run', 'lm1b-cpu', '--plan', '--only'], '--only names no stage'),
    # issue 24, second round: each a class of mistakes a new user made
    ('run-jobs-negative', ['run', 'lm1b-cpu', '--plan', '--jobs', '-1'], 'jobs=-1 must be an integer >= 1'),
    ('run-plan-redo-unknown', ['run', 'lm1b-cpu', '--plan', '--redo', 'nosuch'], "--redo names ['nosuch']"),
    ('run-plan-redo-left-out', ['run', 'lm1b-cpu', '--plan', '--only', 'teacher', '--redo', 'judge'], "which --only ['teacher'] leaves out"),
    ('run-plan-only-some-unknown', ['run', 'lm1b-cpu', '--plan', '--only', 'teacher', 'techer'], "--only names ['techer']"),
    ('run-chain-not-json', ['run', 'afile', '--plan'], 'is not valid JSON'),
    ('run-chain-duplicate-key', ['run', 'dup_chain.json', '--plan'], "key 'steps' appears twice"),
    ('run-chain-takes-misspelt', ['run', 'takes_chain.json', '--plan'], "takes ['dta'], which shared does not hold"),
    ('run-chain-bad-steps-plan', ['run', 'steps_chain.json', '--plan'], 'must be an integer in [1, 65536]'),
    ('run-chain-empty-name', ['run', '', '--plan'], "unknown chain ''"),
    ('sweep-unknown', ['sweep', 'nosuch', '--plan'], "unknown sweep 'nosuch'"),
    ('sweep-not-json', ['sweep', 'afile', '--plan'], 'is not valid JSON'),
    ('sweep-plan-cells-unknown', ['sweep', 'table3-synthetic', '--plan', '--cells', 'nosuch'], "cells ['nosuch'] are not in sweep"),
    ('sweep-jobs-zero', ['sweep', 'table3-synthetic', '--jobs', '0'], 'jobs=0 must be an integer >= 1'),
    ('sweep-run-cells-unknown', ['sweep', 'table3-synthetic', '--cells', 'nosuch'], "cells ['nosuch'] are not in sweep"),
    ('synthetic-task-args-text', ['synthetic', '--task-args', 'L=two'], "L='two' must be an integer >= 1"),
    ('stage-params-dup-deep', ['stage', 'redi', 'dup_deep.json', '--out', 'out'], "key 'pairs' appears twice"),
    ('sweep-gather-runs-dir-empty', ['sweep', 'table3-synthetic', '--gather', '--runs-dir', ''], "--runs-dir '' is empty"),
    ('stage-command-unknown-key', ['stage', 'train', 'typo.json', '--out', 'out'], "unknown keys ['trian']"),
    ('stage-eval-steps-huge', ['stage', 'eval', 'eval_steps.json', '--out', 'out'], 'must be an integer in [1, 65536]'),
    ('stage-out-empty-params-file', ['stage', 'train', 'empty.json', '--out', 'out'], 'is not valid JSON'),
    ('stage-command-params-list', ['stage', 'train', 'list.json', '--out', 'out'], 'settings must be a dict of name: value, not [1, 2]'),
    ('stage-params-folder', ['stage', 'train', 'folder', '--out', 'out'], 'folder'),
    ('synthetic-seed-huge', ['synthetic', '--seeds', str(2**70)], 'seeds=1180591620717411303424 must be an integer in [0, 4294967295]'),
    ('stage-train-seed-huge', ['stage', 'train', 'seed.json', '--out', 'out'], 'seed=18446744073709551616 must be an integer in [0, 4294967295]'),
    ('gpucheck-seed-huge', ['gpucheck', '--scale', 'cpu', '--set', 'seed=-1'], 'seed=-1 must be an integer in [0, 4294967295]'),
    ('synthetic-task-args-no-equals', ['synthetic', '--task-args', 'L'], "'L' must look like key=value"),
    ('synthetic-task-args-twice', ['synthetic', '--task-args', 'L=2', 'L=3'], "gives 'L' twice"),
    ('synthetic-K-one', ['synthetic', '--task-args', 'K=1'], 'K=1 must be an integer >= 2'),
    ('synthetic-parity-L-one', ['synthetic', '--task', 'parity', '--task-args', 'L=1'], 'L=1 must be an integer >= 2'),
    ('synthetic-parity-K', ['synthetic', '--task', 'parity', '--task-args', 'K=3'], "task 'parity' has no arguments ['K']"),
    ('synthetic-sampler-steps-empty', ['synthetic', '--set', 'sampler_steps=[]'], 'sampler_steps must list at least one step count'),
    ('synthetic-sampler-steps-zero', ['synthetic', '--set', 'sampler_steps=[0]'], 'sampler_steps=0 must be an integer in [1, 65536]'),
    ('synthetic-lr-zero', ['synthetic', '--set', 'lr=0'], 'lr=0'),
    ('synthetic-lr-nan', ['synthetic', '--set', 'lr=NaN'], 'lr='),
    ('synthetic-sdtt-steps-three', ['synthetic', '--set', 'sdtt_teacher_steps=3'], 'must be a power of 2'),
    ('synthetic-rounds-zero', ['synthetic', '--set', 'rounds=0'], 'rounds=0'),
    ('synthetic-n-noise-zero', ['synthetic', '--set', 'n_noise=0'], 'n_noise=0'),
    ('synthetic-coupling-pairs-text', ['synthetic', '--set', 'coupling_pairs=many'], "coupling_pairs='many'"),
    ('synthetic-noise-scale-zero', ['synthetic', '--set', 'noise_scale=0'], 'noise_scale=0'),
    ('synthetic-models-unknown', ['synthetic', '--set', 'models=["Nope"]'], "model='Nope'"),
    ('synthetic-sweep-values-empty', ['synthetic', '--sweep', 'noise_dim=,'], "must look like KEY=V1,V2"),
    ('synthetic-sweep-out-empty', ['synthetic', '--sweep', 'noise_dim=8,16', '--out', ''], "--out '' is empty"),
    ('synthetic-sweep-second-value-bad', ['synthetic', '--sweep', 'noise_scale=1,-1'], 'noise_scale=-1'),
    ('gpucheck-unknown-set', ['gpucheck', '--scale', 'cpu', '--set', 'nosuch=1'], 'nosuch'),
    ('gpucheck-device-tpu', ['gpucheck', '--device', 'tpu'], "device='tpu'"),
    ('gpucheck-cuda-absent', ['gpucheck', '--device', 'cuda'], "device='cuda'"),
    ('gpucheck-out-empty', ['gpucheck', '--scale', 'cpu', '--out', ''], "--out '' is empty"),
    ('gpucheck-set-no-equals', ['gpucheck', '--scale', 'cpu', '--set', 'noise_dim'], "must look like key=value"),
    ('bench-noise-dim-negative', ['bench', '--noise-dim', '-3'], 'noise-dim=-3'),
    ('bench-length-zero', ['bench', '--length', '0'], 'length=0'),
    ('bench-repeats-negative', ['bench', '--repeats', '-1'], 'repeats=-1'),
    ('data-import-missing-source', ['data', 'import'], 'needs the folder to import from'),
    ('data-import-nosuch', ['data', 'import', 'nosuch'], 'is not a folder'),
    ('data-import-file', ['data', 'import', 'afile'], 'is not a folder'),
    ('data-import-empty-folder', ['data', 'import', 'folder'], 'lacks'),
    ('data-check-file', ['data', 'check', 'afile'], "data folder 'afile' is not a folder"),
    ('analyse-mask-states-none', ['analyse', 'mask-states'], 'takes NAME=run... (at least 1)'),
    ('analyse-mask-states-two', ['analyse', 'mask-states', 'A=x,y'], "'A=x,y' must look like NAME=run"),
    ('analyse-draws-stray-argument', ['analyse', 'draws', 'wikitext2-draws'], "analyse draws takes no arguments; got ['wikitext2-draws']"),
    ('analyse-draws-nothing', ['analyse', 'draws', '--runs-dir', '.', '--out', 'out'], 'holds no finished evaluation'),
    ('analyse-regime-two-chains', ['analyse', 'regime', 'chars', 'wikitext2-short'], "analyse regime takes CHAIN; got ['chars', 'wikitext2-short']"),
    ('analyse-stray-option', ['analyse', 'regime', 'chars', '--judge', 'runs/j'], '--judge is read by small-coupling; analyse regime does not take it'),
    ('analyse-stray-runs-dir', ['analyse', 'mask-states', 'A=x', '--runs-dir', 'elsewhere'], '--runs-dir is read by'),
    ('analyse-redi-noise-empty', ['analyse', 'redi-noise', '--coupling', 'afile'], 'takes NAME=mdlm_run,imdm_run[,eval_run]...'),
    ('analyse-redi-noise-four', ['analyse', 'redi-noise', 'A=a,b,c,d', '--coupling', 'afile'], "'A=a,b,c,d' must look like NAME=run,run[,run]"),
    ('analyse-small-coupling-one', ['analyse', 'small-coupling', 'A=a', '--judge', 'j', '--data', 'afile', '--out', 'o'], "'A=a' must look like NAME=run,run"),
    ('analyse-small-coupling-bad-json', ['analyse', 'small-coupling', 'A=a,b', '--judge', 'j', '--data', 'afile', '--out', 'o'], "--data 'afile' is not valid JSON"),
    ('analyse-small-coupling-data', ['analyse', 'small-coupling', 'A=a,b', '--judge', 'j', '--data', 'nofile', '--out', 'o'], "--data 'nofile' is not a file"),
    ('analyse-committed-not-eval', ['analyse', 'committed', 'trained', 'MDLM SDTT'], "is a finished 'train' stage, not an evaluation"),
    ('analyse-generalisation-stage', ['analyse', 'generalisation', '--stages', 'teacher'], "--stages ['teacher']: not ReDi stages"),
    ('run-plan-runs-dir-file', ['run', 'chars', '--plan', '--runs-dir', 'afile'], "--runs-dir 'afile' is a file, not a folder of runs"),
    ('sweep-runs-dir-file', ['sweep', 'chars-curves', '--gather', '--runs-dir', 'afile'], "--runs-dir 'afile' is a file"),
    ('sweep-out-file', ['sweep', 'chars-curves', '--gather', '--out', 'afile'], "--out 'afile' is a file; give the folder"),
    ('synthetic-sweep-out-folder', ['synthetic', '--sweep', 'noise_dim=8,16', '--out', 'folder'], "--out 'folder' is a folder; give the JSON file"),
    ('synthetic-sweep-out-under-file', ['synthetic', '--sweep', 'noise_dim=8,16', '--out', 'afile/x.json'], 'cannot be made'),
    ('gpucheck-gpu-scale-on-cpu', ['gpucheck', '--scale', 'gpu', '--device', 'cpu'], '--scale gpu is the paper-size check for a GPU; the device is cpu'),
    ('set-value-duplicate-key', ['synthetic', '--set', 'task_args={"L": 2, "L": 3}'], "key 'L' appears twice in one object"),
    ('sweep-cells-with-gather', ['sweep', 'chars-curves', '--gather', '--cells', 'a'], '--cells a picks cells to run; --gather runs nothing'),
    ('analyse-runs-dir-empty', ['analyse', 'gates', 'chars', '--runs-dir', ''], "--runs-dir '' is empty"),
]


# gathers pointed at a runs folder that holds none of the runs: each must refuse to replace results holding more
GATHERS = [
    ('gather-draws', ['analyse', 'draws', '--runs-dir', 'runs', '--out', 'results/wikitext2-draws'], 'results/wikitext2-draws/quality.json', 'quality.json'),
    ('gather-chain', ['analyse', 'chain', 'wikitext2-conditional', '--runs-dir', 'runs', '--out', 'results/wikitext2-conditional'],
     'results/wikitext2-conditional/gathered.json', 'gathered.json'),
    ('gather-sweep', ['sweep', 'table3-wikitext2', '--gather', '--runs-dir', 'runs', '--out', 'results/sweeps/table3-wikitext2'],
     'results/sweeps/table3-wikitext2/result.json', 'result.json'),
    ('gather-regime', ['analyse', 'regime', 'chars', '--runs-dir', 'runs', '--out', 'results/chars'], None, 'regime.json'),
    ('gather-gates', ['analyse', 'gates', 'chars', '--runs-dir', 'runs', '--out', 'results/chars/gates.json'], None, 'gates.json'),
]


THREADS = re.compile(r'^imdm (bench|stage|gpucheck): \d+ threads? \(')      # the one note a command prints before it starts


def _snapshot(root:Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob('*'))}


def _run(argv, cwd:Path):
    err, out, old = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out): code = main(argv)
    finally: os.chdir(old)
    return code, err.getvalue(), out.getvalue()


def _scratch(tmp_path:Path) -> Path:
    (tmp_path / 'afile').write_text('not json {')
    (tmp_path / 'params.json').write_text('{}')
    (tmp_path / 'bad_params.json').write_text('{"train": {"steps": 0}}')
    (tmp_path / 'dup.json').write_text('{"train": {"steps": 1, "steps": 2}}')
    (tmp_path / 'bad_chain.json').write_text('{"stages": [{"id": "a", "notebook": "lm_train", "params": {"train": {"steps": 0}}}]}')
    (tmp_path / 'dup_chain.json').write_text('{"stages": [{"id": "a", "notebook": "lm_train", "params": {"train": {"steps": 1, "steps": 2}}}]}')
    (tmp_path / 'takes_chain.json').write_text('{"shared": {"data": {}}, "stages": [{"id": "a", "notebook": "lm_train", "takes": ["dta"]}]}')
    (tmp_path / 'steps_chain.json').write_text('{"stages": [{"id": "a", "notebook": "lm_eval", "params": {"sampler_steps": [2, 100000000]}}]}')
    (tmp_path / 'typo.json').write_text('{"trian": {"steps": 5}}')
    (tmp_path / 'eval_steps.json').write_text('{"sampler_steps": [2, 100000000]}')
    (tmp_path / 'empty.json').write_text('')
    (tmp_path / 'dup_deep.json').write_text('{"redi": {"pairs": 4, "rounds": 1, "pairs": 8}}')
    (tmp_path / 'seed.json').write_text('{"train": {"seed": 18446744073709551616}}')
    (tmp_path / 'list.json').write_text('[1, 2]')
    (tmp_path / 'folder').mkdir()
    (tmp_path / 'finished').mkdir()
    (tmp_path / 'finished' / 'metrics.json').write_text('{"stage": "eval", "rows": []}')
    (tmp_path / 'trained').mkdir()
    (tmp_path / 'trained' / 'metrics.json').write_text('{"stage": "train", "final_val_ppl (EMA)": 7.1}')
    return tmp_path


def _check(argv, cwd:Path, expect:str, watch:list[Path]):
    before = {str(w): _snapshot(w) for w in watch}
    code, err, _ = _run(argv, cwd)
    lines = [l for l in err.splitlines() if l.strip()]                       # the threads note comes only once work starts
    assert code == 2, f"{argv}: exit {code}, stderr {err!r}"
    assert len(lines) == 1, f"{argv}: not one line: {err!r}"
    assert expect in lines[0], f"{argv}: {expect!r} not in {lines[0]!r}"
    assert {str(w): _snapshot(w) for w in watch} == before, f"{argv}: something on disk was made or changed"


@pytest.mark.parametrize('case', CHAINS, ids=[c[0] for c in CHAINS])
def test_bad_chain(case, tmp_path):
    _, chain, expect = case
    d = _scratch(tmp_path)
    (d / 'chain.json').write_text(chain if isinstance(chain, str) else json.dumps(chain))
    _check(['run', 'chain.json', '--runs-dir', 'runs'], d, expect, [d])
    assert not (d / 'runs').exists() and not (d / 'PWNED').exists() and not Path('PWNED').exists()


@pytest.mark.parametrize('case', MODEL_CHAINS, ids=[c[0] for c in MODEL_CHAINS])
def test_bad_chain_models(case, tmp_path, models):
    _, make, expect = case
    d = _scratch(tmp_path)
    (d / 'chain.json').write_text(json.dumps(make(models)))
    _check(['run', 'chain.json', '--runs-dir', 'runs'], d, expect, [d, Path(models['mdlm']).parent])


@pytest.mark.parametrize('case', COMMANDS, ids=[c[0] for c in COMMANDS])
def test_bad_command(case, tmp_path):
    _, argv, expect = case
    d = _scratch(tmp_path)
    _check(argv, d, expect, [d])


@pytest.mark.parametrize('case', GATHERS, ids=[c[0] for c in GATHERS])
def test_a_gather_that_finds_less_replaces_nothing(case, tmp_path):
    """A mistyped runs folder used to overwrite committed results with empty tables: now one line, exit 2, nothing changed."""
    from imdm.readme import find_root
    _, argv, committed, name = case
    d = _scratch(tmp_path)
    (d / 'runs').mkdir()
    target = d / argv[argv.index('--out') + 1]
    dest = target if target.suffix else target / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if committed: dest.write_bytes((find_root() / committed).read_bytes())
    elif name == 'gates.json': dest.write_text(json.dumps({'chain': 'chars', 'few_step_gap': {}}))
    else: dest.write_text(json.dumps({'rows': [{}] * 3}))
    _check(argv, d, 'refusing to replace it with fewer', [d])


def test_the_table_is_large_enough():
    assert len(CHAINS) + len(MODEL_CHAINS) + len(COMMANDS) >= 100
    ids = [c[0] for c in CHAINS + MODEL_CHAINS + COMMANDS + GATHERS]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})   # a repeated id hides one case behind another


def test_argparse_mistakes_name_the_value(tmp_path):
    """Type errors that argparse catches (not a number, an unknown option) also exit 2, naming the value on the last line."""
    for argv, expect in [(['bench', '--steps', 'x'], "invalid int value: 'x'"), (['run', 'lm1b-cpu', '--jobs', 'two'], "invalid int value: 'two'"),
                         (['synthetic', '--draws', 'some'], "invalid choice: 'some'"), (['fly'], "invalid choice: 'fly'")]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == 2 and expect in err.getvalue().strip().splitlines()[-1]
