"""The task-norm advantage written out from its definition, for the estimator and the trainer-stage tests."""

from __future__ import annotations

import statistics

EPS = 1e-6


def reference(scores, uids, tasks, eps=EPS, std_mode="task"):
    """The definition, written out: (r_i - mean of its group) / (sample std of its task, or group, + eps)."""
    out = []
    for i, r in enumerate(scores):
        if tasks[i] is None:
            out.append(0.0)
            continue
        group = [scores[j] for j in range(len(scores)) if uids[j] == uids[i] and tasks[j] is not None]
        pool = group if std_mode == "group" else [scores[j] for j in range(len(scores)) if tasks[j] == tasks[i]]
        std = statistics.stdev(pool) if len(pool) > 1 else 0.0
        out.append((r - statistics.fmean(group)) / (std + eps))
    return out
