"""Hypothesis strategies for random and degenerate ReLU networks."""

import numpy as np
from hypothesis import strategies as st

from pieces import ReLUNet

DEGENERACIES = ("zero_row", "zero_col", "duplicate", "negate", "scale2", "dead_layer", "zero_neuron")


@st.composite
def nets(draw, max_depth=8, max_width=16, degenerate=True):
    """A net of depth 1..max_depth, widths 1..max_width.

    Values are Gaussian, or small dyadic numbers k/4 (which make many crossings coincide
    exactly), then degeneracies are applied: zero rows and columns, duplicated, negated
    and power-of-two-scaled neurons, dead layers, and neurons that are identically 0.
    """
    depth = draw(st.integers(1, max_depth))
    widths = draw(st.lists(st.integers(1, max_width), min_size=depth, max_size=depth))
    seed = draw(st.integers(0, 2**32 - 1))
    mode = draw(st.sampled_from(["gauss", "dyadic"]))
    rng = np.random.default_rng(seed)
    sizes = [1] + widths + [1]
    ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if mode == "gauss":
            w = rng.normal(0, np.sqrt(2 / n_in), (n_out, n_in))
            b = rng.normal(0, 0.5, n_out)
        else:
            w = rng.integers(-8, 9, (n_out, n_in)) / 4.0
            b = rng.integers(-8, 9, n_out) / 4.0
        ws.append(w)
        bs.append(b)
    if degenerate:
        ops = draw(st.lists(st.tuples(st.sampled_from(DEGENERACIES), st.integers(0, 10**6)), max_size=4))
        for op, r in ops:
            layer = r % depth  # a hidden layer
            w, b, nxt = ws[layer], bs[layer], ws[layer + 1]
            n = w.shape[0]
            j, k = (r // 7) % n, (r // 13) % n
            if op == "zero_row":
                w[j] = 0.0
            elif op == "zero_col":
                nxt[:, j] = 0.0
            elif op == "duplicate":
                w[k], b[k] = w[j], b[j]
            elif op == "negate":
                w[k], b[k] = -w[j], -b[j]
            elif op == "scale2":
                e = 2.0 ** ((r % 5) - 2)
                w[k], b[k] = e * w[j], e * b[j]
            elif op == "dead_layer":
                w[:] = 0.0
                b[:] = -1.0
            elif op == "zero_neuron":
                w[j], b[j] = 0.0, 0.0
    return ReLUNet(ws, bs)


intervals = st.sampled_from([(-3.0, 3.0), (0.0, 1.0), (-1.0, 0.5), (-0.25, 2.0), (float("-inf"), float("inf"))])
