"""Repository-wide pytest setup, loaded before anything imports Numba.

CUDA kernels run in numba-cuda's CPU simulator unless the environment says otherwise
(``NUMBA_ENABLE_CUDASIM=0`` on a machine with a GPU runs the same tests on it).
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
