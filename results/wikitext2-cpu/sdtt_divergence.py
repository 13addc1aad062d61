"""Rebuild sdtt_divergence.json: one SDTT round with each divergence from the wikitext2-cpu teacher.

Usage: python sdtt_divergence.py TEACHER_RUN KL_BWD_RUN KL_FWD_RUN EVAL_RUN [EVAL_RUN ...]
where the *_RUN folders come from `imdm stage sdtt` (sdtt={"teacher_steps": 4, "rounds": 1, "divergence": ...})
and `imdm stage eval` (steps [2], samples 256, the preset's judge).
"""
import json, sys
from pathlib import Path
import torch
from imdm.data import DataConfig
from imdm.lm_experiment import open_data
from imdm.checkpoints import model_path
from imdm.schedules import LogLinear
from imdm.sdtt import kl, log_probs, teacher_targets
from imdm.checkpoints import load_model

def entropy(lp): return -(lp.exp() * lp).sum(-1).mean().item()

def x_theta_stats(teacher, students, x0, times=(1.0, .75, .5, .25), dt=.25, seed=1):
    "Entropy of x_theta on the masked positions, and KL to the teacher's sampled two-step targets, per time."
    out, g, sch = {'t': list(times)}, torch.Generator().manual_seed(seed), LogLinear()
    with torch.no_grad():
        for t0 in times:
            t = torch.full((x0.shape[0],), t0)
            zt = teacher.process(sch).corrupt(x0, t, g)
            rows = zt.z == teacher.mask_id
            target = teacher_targets(teacher, sch, zt, t, dt, 2, g, rows)                      # (M, V)
            out.setdefault('targets', {}).setdefault('entropy', []).append(entropy(target))
            for name, m in {'teacher': teacher, **students}.items():
                lp = log_probs(m.logits(zt.z, zt.eta, t, rows), m.mask_id)                  # (M, V)
                d = out.setdefault(name, {'entropy': [], 'kl_to_targets': []})
                d['entropy'].append(entropy(lp)); d['kl_to_targets'].append(kl(lp, target).mean().item())
    return out

if __name__ == '__main__':
    torch.manual_seed(0)
    teacher_run, bwd_run, fwd_run, *evals = sys.argv[1:]
    here = Path(__file__).parent
    data = DataConfig(**json.loads((here.parent.parent / 'imdm/params/wikitext2-cpu.json').read_text())['shared']['data'])
    _, _, _, val = open_data(data, 16, 0, 'cpu')
    load = lambda p: load_model(model_path(p)).eval()
    stats = x_theta_stats(load(teacher_run), {'kl-bwd': load(bwd_run), 'kl-fwd': load(fwd_run)}, val(0)[0])
    rows = {r['model']: {'gen_ppl': r['gen_ppl'], 'entropy': r['entropy']}
            for e in evals for r in json.loads((Path(e) / 'metrics.json').read_text())['rows']}
    out = {'what': 'one SDTT round (teacher 4 steps -> student 2 steps, 150 optimizer steps, batch 16) from the wikitext2-cpu '
                   'teacher, MDLM student; Gen PPL at 2 steps (256 samples, the preset judge); x_theta on one validation batch',
           'gen_ppl_2_steps': rows, 'x_theta': stats}
    (here / 'sdtt_divergence.json').write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
