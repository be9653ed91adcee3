"""The comparison every outside check makes: logits within a tolerance relative to each
image's largest logit magnitude, and the same arg-max wherever the top two are apart."""

import numpy as np


def compare_logits(got, want, tol):
    """(max relative difference, arg-max identical, passed)."""
    if got.shape != want.shape:
        raise ValueError(f"shape: got {got.shape}, autorep {want.shape}")
    scale = np.maximum(np.abs(want).max(axis=1, keepdims=True), 1.0)
    rel = float((np.abs(got - want) / scale).max())
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5 * scale[:, 0]
    same = bool((got.argmax(1) == want.argmax(1))[clear].all())
    return rel, same, rel <= tol and same
