"""Seed lists in blocks and the files an evaluation writes.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from symbreak.analysis.io import sidecar_path
from symbreak.experiments.output import Outputs, save
from symbreak.experiments.sampling.seeds import parse_seeds


def parse_seed_list(spec: str, block_size: int, name: str = "--seeds") -> list[int]:
    """Seeds from a spec like ``0-359``; their number must be a multiple of the block size."""
    seeds = parse_seeds(spec, name)
    if len(seeds) % block_size:
        raise ValueError(f"{name}: {len(seeds)} seeds is not a multiple of the block size {block_size} "
                         f"(the held-out floor's size; use e.g. 0-{block_size - 1} or 0-{5 * block_size - 1})")
    return seeds


def write_outputs(out_dir: str | os.PathLike, stem: str, *, config: dict, results: dict,
                  frames: Mapping[str, pd.DataFrame], texts: Mapping[str, str] | None = None,
                  figure=None) -> Path:
    """Write ``stem``.json (results), ``stem``.config.json (resolved config), one CSV per frame
    (``stem``.csv for the key ``""``, else ``stem``_key.csv), text files and the figure (PNG + PDF) into
    ``out_dir``, all at once (nothing on failure), through :func:`symbreak.experiments.output.save`."""
    documents = {f"{stem}.json": results, sidecar_path(f"{stem}.json").name: config}
    save(out_dir, Outputs(stem, figure=figure, frames=frames, documents=documents, texts=dict(texts or {})))
    return Path(out_dir)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (cells as str)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"
