"""Gather the wikitext2-draws chain (issue 10's text experiment) from its run folders into this folder.

Usage: python results/wikitext2-draws/gather.py [RUNS_DIR] [CHAIN ...]
RUNS_DIR defaults to runs/; CHAIN defaults to wikitext2-draws and wikitext2-draws-seeds (the decisive pair's seeds
1 and 2). Stages that have not finished are listed as missing; the rest is written here:

- quality.json: every evaluated row (model, steps, Gen PPL and entropy with 95% bootstrap intervals, samples);
- samples.json.gz: each row's per-sample judge NLL and token counts, from which every interval is recomputed;
- ratios.json: at each step count, each IMDM row's Gen PPL over the best MDLM student's (lowest 2-step Gen PPL),
  with a bootstrap interval that resamples both models' samples, and the entropy ratio (training seed 0);
- seeds.json: the decisive pair across training seeds (rows named '<model>, seed N'; seed 0 has no suffix): each
  seed's ratio with its interval, and the ratio of the pooled samples of every seed both models have;
- stages.json: minutes per stage, ReDi's noise_reliance (t=1, t=0.5) and 2-step recall of its pairs;
- quality_figure.json: Gen PPL and entropy against steps, with intervals, the teacher's 128 steps as the ceiling.
"""
import gzip, json, sys
from pathlib import Path

import torch
from imdm.evaluation import ppl_ratio_ci, row_scores, quality_figure
from imdm.core import write_json
from imdm.runner import load_chain, chain_params, run_key

HERE = Path(__file__).parent


def folders(chain:dict, runs:Path) -> dict:
    "Every stage's run folder, as `imdm run` names it."
    out = {}
    for s in chain['stages']:
        out[s['id']] = runs / run_key(s['notebook'], chain_params(chain, s, {k: str(v) for k, v in out.items()}))
    return out


def metrics(folder:Path):
    f = folder / 'metrics.json'
    return json.loads(f.read_text()) if f.exists() else None


def gather(runs:Path, names:list[str]) -> dict:
    rows, stages, missing = [], {}, []
    for name in names:
        chain = load_chain(name)
        for sid, folder in folders(chain, runs.resolve()).items():
            m = metrics(folder)
            if m is None: missing.append(f"{chain.get('name', name)}:{sid}"); continue
            entry = {'chain': chain.get('name', name), 'folder': folder.name, 'minutes': (m.get('seconds') or 0) / 60}
            for k in ('noise_reliance', 'noise_reliance_half', 'recall_2step', 'final_val_ppl (EMA)', 'entropy', 'pairs'):
                if k in m: entry[k] = m[k]
            stages[f"{chain.get('name', name)}:{sid}"] = entry
            if m.get('stage') == 'eval':
                for r in m['rows']: rows.append({**r, 'stage': sid, 'draws': json.loads((folder / 'params.json').read_text()).get('draws', 'independent')})
    return {'rows': rows, 'stages': stages, 'missing': missing}


def split_seed(model:str) -> tuple[str, int]:
    "('MDLM SDTT', 1) from 'MDLM SDTT, seed 1'; seed 0 rows carry no suffix."
    base, sep, seed = model.rpartition(', seed ')
    return (base, int(seed)) if sep and seed.isdigit() else (model, 0)


def seed_ratios(rows:list[dict], imdm:str='IM-SDTT (noise-driven)', mdlm:str='MDLM SDTT') -> dict:
    "The decisive pair per training seed, and pooled over the seeds both have, at each step count."
    by = {}
    for r in rows:
        base, seed = split_seed(r['model'])
        by[base, seed, r['steps']] = r
    out = {'imdm': imdm, 'mdlm': mdlm, 'rows': []}
    for k in sorted({r['steps'] for r in rows}):
        seeds = sorted(s for (b, s, kk) in by if b == imdm and kk == k and (mdlm, s, k) in by)
        if not seeds: continue
        per = []
        for s in seeds:
            ratio, lo, hi = ppl_ratio_ci(row_scores(by[imdm, s, k]), row_scores(by[mdlm, s, k]), n_boot=2000, seed=k)
            per.append({'seed': s, 'ratio': ratio, 'ci': [lo, hi]})
        pool = lambda b: tuple(torch.cat(x) for x in zip(*(row_scores(by[b, s, k]) for s in seeds)))
        ratio, lo, hi = ppl_ratio_ci(pool(imdm), pool(mdlm), n_boot=2000, seed=k)
        out['rows'].append({'steps': k, 'seeds': seeds, 'per_seed': per, 'pooled': {'ratio': ratio, 'ci': [lo, hi]},
                            'mean_of_seeds': sum(p['ratio'] for p in per) / len(per)})
    return out


def ratios(rows:list[dict]) -> dict:
    "Each IMDM row over the best MDLM student (lowest 2-step Gen PPL), per step count, with bootstrap intervals (seed 0 rows)."
    rows = [r for r in rows if split_seed(r['model'])[1] == 0]
    students = [r for r in rows if r['model'].startswith('MDLM') and r['model'] != 'MDLM teacher' and r['steps'] == 2]
    if not students: return {}
    best = min(students, key=lambda r: r['gen_ppl'])['model']
    get = {(r['model'], r['steps']): r for r in rows}
    out = {'baseline': best, 'rows': []}
    for r in rows:
        if not (r['model'].startswith('IM') and (best, r['steps']) in get): continue
        b = get[best, r['steps']]
        ratio, lo, hi = ppl_ratio_ci(row_scores(r), row_scores(b), n_boot=2000, seed=r['steps'])
        out['rows'].append({'model': r['model'], 'steps': r['steps'], 'ratio': ratio, 'ci': [lo, hi],
                            'entropy_ratio': r['entropy'] / b['entropy'], 'excludes_1': hi < 1 or lo > 1})
    return out


MATCHED = {   # each IMDM row and the MDLM row trained by the same recipe
    'IM-SDTT (noise-driven)': 'MDLM SDTT', 'IM-SDTT+ReDi (noise-driven)': 'MDLM SDTT+ReDi',
    'IMDM ReDi (recorded noise)': 'MDLM ReDi', 'IMDM ReDi (fresh noise)': 'MDLM ReDi', 'IMDM ReDi (noise-driven coupling)': 'MDLM ReDi'}


def matched_ratios(rows:list[dict]) -> dict:
    "Each IMDM row over the MDLM row of its own recipe (seed 0), per step count: what the mask state adds to that recipe."
    get = {(r['model'], r['steps']): r for r in rows if split_seed(r['model'])[1] == 0}
    out = []
    for (model, k), r in sorted(get.items()):
        b = get.get((MATCHED.get(model), k))
        if b is None: continue
        ratio, lo, hi = ppl_ratio_ci(row_scores(r), row_scores(b), n_boot=2000, seed=k)
        out.append({'model': model, 'baseline': b['model'], 'steps': k, 'ratio': ratio, 'ci': [lo, hi], 'entropy_ratio': r['entropy'] / b['entropy']})
    return {'rows': out}


if __name__ == '__main__':
    runs = Path(sys.argv[1]) if len(sys.argv) > 1 else Path('runs')
    g = gather(runs, sys.argv[2:] or ['wikitext2-draws', 'wikitext2-draws-seeds'])
    slim = [{k: v for k, v in r.items() if k not in ('sample_nll', 'sample_weight')} for r in g['rows']]
    write_json(HERE / 'quality.json', {'rows': slim, 'missing': g['missing']})
    with gzip.open(HERE / 'samples.json.gz', 'wt') as f:
        json.dump([{k: r[k] for k in ('model', 'steps', 'stage', 'sample_nll', 'sample_weight')} for r in g['rows']], f)
    rat = ratios(g['rows'])
    write_json(HERE / 'ratios.json', rat)
    write_json(HERE / 'stages.json', g['stages'])
    matched = matched_ratios(g['rows'])
    write_json(HERE / 'matched.json', matched)
    seeds = seed_ratios(g['rows'])
    write_json(HERE / 'seeds.json', seeds)
    if slim:
        fig = quality_figure([r for r in slim if r['steps'] <= 16 and split_seed(r['model'])[1] == 0], 'WikiText-2, CPU: quality versus steps (95% bootstrap intervals)')
        ceiling = [r for r in slim if r['model'] == 'MDLM teacher' and r['steps'] == 128]
        if ceiling: fig.add_hline(y=ceiling[0]['gen_ppl'], line_dash='dot', row=1, col=1, annotation_text='teacher, 128 steps')
        fig.write_json(str(HERE / 'quality_figure.json'))
    for r in sorted(slim, key=lambda r: (r['model'], r['steps'])):
        print(f"{r['model']:<36}{r['steps']:>4}  Gen PPL {r['gen_ppl']:9.1f} [{r['gen_ppl_ci'][0]:.1f}, {r['gen_ppl_ci'][1]:.1f}]  entropy {r['entropy']:.3f}")
    for r in rat.get('rows', []):
        print(f"{r['model']} / {rat['baseline']}, {r['steps']} steps: {r['ratio']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}], entropy ratio {r['entropy_ratio']:.3f}")
    for r in matched['rows']:
        print(f"{r['model']} / {r['baseline']} (same recipe), {r['steps']} steps: {r['ratio']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}], "
              f"entropy ratio {r['entropy_ratio']:.3f}")
    for r in seeds['rows']:
        per = ', '.join(f"seed {p['seed']} {p['ratio']:.3f} [{p['ci'][0]:.3f}, {p['ci'][1]:.3f}]" for p in r['per_seed'])
        print(f"{seeds['imdm']} / {seeds['mdlm']}, {r['steps']} steps: {per}; pooled {r['pooled']['ratio']:.3f} "
              f"[{r['pooled']['ci'][0]:.3f}, {r['pooled']['ci'][1]:.3f}]")
    print('missing:', g['missing'])
