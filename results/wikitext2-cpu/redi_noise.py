"""Rebuild redi_noise.json: does the IMDM ReDi student read its noise? (WikiText-2 CPU preset.)

Usage: python redi_noise.py COUPLING_RUN NAME=MDLM_REDI_RUN,IMDM_REDI_RUN[,EVAL_RUN] [NAME=...]
COUPLING_RUN is the IMDM student's coupling stage; each NAME names a pair of ReDi runs (`imdm stage redi`)
trained on the preset's couplings, and optionally an `imdm stage eval` run of them at 2 steps.
"""
import json, sys
from pathlib import Path
import torch
from imdm.checkpoints import model_path
from imdm.redi import load_coupling, noise_reliance
from imdm.schedules import LogLinear
from imdm.checkpoints import load_model

if __name__ == '__main__':
    torch.manual_seed(0)
    coupling = load_coupling(Path(sys.argv[1]) / 'coupling')[:1024]
    out = {}
    for arg in sys.argv[2:]:
        name, runs = arg.split('=', 1)
        mdlm_run, imdm_run, *ev = runs.split(',')
        r = {'noise_reliance': noise_reliance(load_model(model_path(imdm_run)).eval(), LogLinear(), coupling, batch_size=64)}
        for k, run in (('MDLM', mdlm_run), ('IMDM', imdm_run)):
            m = json.loads((Path(run) / 'metrics.json').read_text())
            p = json.loads((model_path(run) / 'config.json').read_text())['params']['train']
            r[k] = {'steps': m['steps'], 'lr': p['lr'], 'minutes': m['seconds'] / 60,
                    'loss': [[h['step'], h['loss']] for h in m['history']]}
        if ev: r['gen_ppl_2_steps'] = {row['model']: {'gen_ppl': row['gen_ppl'], 'entropy': row['entropy']}
                                       for row in json.loads((Path(ev[0]) / 'metrics.json').read_text())['rows'] if row['steps'] == 2 and 'ReDi' in row['model']}
        out[name] = r
        print(name, json.dumps({k: v for k, v in r.items() if k in ('noise_reliance', 'gen_ppl_2_steps')}), flush=True)
    (Path(__file__).parent / 'redi_noise.json').write_text(json.dumps(out, indent=1))
