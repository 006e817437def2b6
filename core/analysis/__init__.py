"""Analysis of what a learner has learned: embeddings, 2-D projections, distance matrices, exports.

Importing this package points numba's on-disk cache (used by umap-learn and pynndescent) at
MetaScope's cache folder, so UMAP's ~20 s of compilation is paid once per machine, not once
per process. It must happen before numba is first imported, hence here.
"""

from __future__ import annotations

import os

from core.data.base import cache_dir

os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
