"""Attribution bound to our runs: the method table, its options, display policy, explain.

`methods` names every saliency method and how to run and show it on a bound model; `workflow`
explains items of a trained run (`python -m bugnist_jax.explain`).
"""

from bugnist_jax.attribution.methods import (
  METHODS,
  Explainer,
  Method,
  Options,
  check_methods,
  display_map,
  methods_for,
  run_method,
)
from bugnist_jax.attribution.workflow import ExplainRequest, explain_run

__all__ = [
  "METHODS",
  "ExplainRequest",
  "Explainer",
  "Method",
  "Options",
  "check_methods",
  "display_map",
  "explain_run",
  "methods_for",
  "run_method",
]
