"""ReDi on a coupling small enough to memorise (LM1B-shard CPU preset): does the IMDM student then read its noise,
and does fresh noise route its 2-step samples to coherent completions?

Reproduce, from a finished `imdm run lm1b-cpu --runs-dir RUNS` (SDTT students S_MDLM, S_IMDM, judge J):
  for s in mdlm imdm: imdm stage coupling coupling_$s.json --out coupling_$s     # 256 pairs, 16 teacher steps
  for s in mdlm imdm: imdm stage redi redi_$s.json --out redi_$s                 # 1,600 steps at lr 1e-3 on them
  python small_coupling.py OUT.json J data.json "NAME=redi_imdm,coupling_imdm" ...
The parameter files are the chain's ReDi stages with `"redi": {"pairs": 256, ...}`, `"coupling"` set and the
`train` block changed (see small_coupling.json, `params`).
"""
import json, sys
from pathlib import Path
import torch
from imdm.data import DataConfig, TokenBlocks
from imdm.evaluation import gen_ppl, sample_entropy
from imdm.forward import Noised
from imdm.lm_experiment import load_judge
from imdm.checkpoints import model_path
from imdm.redi import load_coupling, noise_reliance, source_loss
from imdm.samplers import Ancestral, generate, sample
from imdm.schedules import LogLinear
from imdm.checkpoints import load_model

def nearest_overlap(x, targets):
    "Per sample, the largest fraction of positions it shares with any coupling target."
    return torch.stack([(row[None] == targets).float().mean(1).max() for row in x])

@torch.no_grad()
def recall(model, c, steps=2, seed=0):
    "Positions where 2-step samples from the coupling's own sources match its completions: with each pair's noise, and with the noise shuffled."
    g = torch.Generator().manual_seed(seed)
    own = sample(model, LogLinear(), Ancestral(steps=steps), Noised(c.z1, c.eta), c.t, g).x
    eta = None if c.eta is None else c.eta[torch.randperm(len(c), generator=torch.Generator().manual_seed(1))]
    other = sample(model, LogLinear(), Ancestral(steps=steps), Noised(c.z1, eta), c.t, g).x
    return (own == c.x0).float().mean().item(), (other == c.x0).float().mean().item()

if __name__ == '__main__':
    out_path, judge_run, data = sys.argv[1], sys.argv[2], json.loads(Path(sys.argv[3]).read_text())
    blocks = TokenBlocks(DataConfig.from_dict(data), 'validation')
    judge = load_judge(judge_run, blocks, 'cpu', 1024)
    out = {}
    for arg in sys.argv[4:]:
        name, runs = arg.split('=', 1)
        model_run, coupling_run = runs.split(',')
        model = load_model(model_path(model_run)).eval()
        x = torch.cat([generate(model, LogLinear(), Ancestral(steps=2), n=32, length=blocks.config.length, seed=i).x
                       for i in range(0, 256, 32)])                                  # (256, L), fresh noise
        c = load_coupling(Path(coupling_run) / 'coupling')
        own, shuffled = recall(model, c)
        r = {'gen_ppl': gen_ppl(judge, x), 'entropy': sample_entropy(x), 'distinct': len({tuple(row.tolist()) for row in x}) / len(x),
             'pairs': len(c), 'source_loss': source_loss(model, LogLinear(), c, batch_size=64), 'noise_reliance': noise_reliance(model, LogLinear(), c[:1024], batch_size=64),
             'recall_own_noise': own, 'recall_shuffled_noise': shuffled,
             'overlap_fresh': nearest_overlap(x, c.x0).mean().item(),
             'overlap_real_text': nearest_overlap(blocks.rows(range(min(256, len(blocks))))[0], c.x0).mean().item()}
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
        out[name] = r
    Path(out_path).write_text(json.dumps(out, indent=1))
