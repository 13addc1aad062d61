"""Does a ReDi student learn the noise-to-completion map, and does it generalise to fresh noise? (issue 10's links)

Usage: python results/wikitext2-draws/generalisation.py [RUNS_DIR] [STAGE ...]
For each IMDM ReDi stage of the wikitext2-draws chain (default: imdm_redi_noise) it makes a fresh coupling from
the same teacher with the same draws but another seed (pairs the student never saw), then measures on the
training pairs and on the fresh ones: the source loss (nats per masked token), the loss with each pair's noise
swapped for another's, the 2-step recall of the pair's completion from its own noise, and the MDLM teacher's source loss and recall on the same pairs. Writes generalisation.json.
"""
import json, sys, time
from pathlib import Path

import torch
from imdm.checkpoints import model_path
from imdm.redi import ReDiConfig, make_coupling, load_coupling, source_loss, completion_recall, Coupling
from imdm.schedules import LogLinear
from imdm.checkpoints import load_model

sys.path.insert(0, str(Path(__file__).parent))
from gather import folders                                     # noqa: E402
from imdm.runner import load_chain                             # noqa: E402

HERE, N = Path(__file__).parent, 128


def shuffled(c:Coupling) -> Coupling:
    return Coupling(c.z1, c.eta[torch.randperm(len(c), generator=torch.Generator().manual_seed(0))], c.x0, c.t)


def measure(model, c:Coupling, draws:str) -> dict:
    sch = LogLinear()
    own = source_loss(model, sch, c, 64)
    return {'source_loss': own, 'shuffled_noise_loss': source_loss(model, sch, shuffled(c), 64),
            'recall_2step': completion_recall(model, sch, c, 2, draws, batch_size=64)}


if __name__ == '__main__':
    torch.manual_seed(0); torch.set_num_threads(1)
    runs = Path(sys.argv[1]) if len(sys.argv) > 1 else Path('runs')
    chain = load_chain('wikitext2-draws')
    where, stages = folders(chain, runs.resolve()), {s['id']: s for s in chain['stages']}
    out = {}
    for sid in sys.argv[2:] or ['imdm_redi_noise']:
        p, t0 = stages[sid]['params'], time.perf_counter()
        rc = ReDiConfig.from_dict(p['redi'])
        student = load_model(model_path(where[sid])).eval()
        teacher = load_model(model_path(where[p['teacher'][1:]])).eval()
        train = load_coupling(Path(where[p['coupling'][1:]]) / 'coupling')[:N]
        fresh = make_coupling(teacher, LogLinear(), rc.sampler(), N, train.x0.shape[1], student.noise, seed=12345, shard_size=N)
        sch = LogLinear()
        out[sid] = {'pairs': N, 'draws': rc.draws, 'training_pairs': measure(student, train, rc.draws),
                    'fresh_pairs': measure(student, fresh, rc.draws),
                    # the MDLM teacher cannot read noise: its source loss is the completions' marginal cross-entropy
                    'teacher': {k: {'source_loss': source_loss(teacher, sch, c, 64), 'recall_2step': completion_recall(teacher, sch, c, 2, 'independent', batch_size=64)}
                                for k, c in (('training_pairs', train), ('fresh_pairs', fresh))},
                    'seconds': time.perf_counter() - t0}
        print(sid, json.dumps(out[sid], indent=1), flush=True)
    (HERE / 'generalisation.json').write_text(json.dumps(out, indent=1))
