"Shared set-up for the test suite: offline, CPU, repo paths."
import os, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('PLOTLY_RENDERER', 'plotly_mimetype')

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin folder, where nbdev's commands live


def notebooks():
    "Every notebook that nbdev tests: under nbs/, skipping scratch (`_*`) files and checkpoints."
    return sorted(p for p in (ROOT/'nbs').rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT/'nbs').parts))
