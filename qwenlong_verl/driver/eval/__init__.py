"""Evaluation harness: benchmark files -> prompts (training template) -> served policy -> training scorer -> report.

Modules, one concern each: :mod:`.benchmarks` (local benchmark files into :class:`~.benchmarks.EvalItem`),
:mod:`.truncate` (middle truncation to a token budget), :mod:`.generate` (OpenAI-compatible client with
retries), :mod:`.agents` (``--agent``: full context or the memory agent), :mod:`.memory` (memory-agent
trajectories, resumable per step), :mod:`.store` (the eval folder: append-only records, resume), :mod:`.scoring`
(training scorer, pass@k, summaries), :mod:`.agent_report` (memory-agent and ``--compare`` figures),
:mod:`.report` (markdown + plots) and :mod:`.runner` (the ``eval`` pipeline).
Nothing here imports veRL: evaluation runs wherever the policy is served.
"""
