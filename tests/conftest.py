"""Shared pytest setup: no test may reach a model hub (these machines cannot), so hub calls fail fast."""
import os

for var in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'HF_DATASETS_OFFLINE'):
    os.environ.setdefault(var, '1')
