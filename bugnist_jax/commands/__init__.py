"""The commands, each a thin file over `bugnist_jax.cli.run` and one library call.

`python -m bugnist_jax.<name>` (and `bugnist-<name>` after `pip install`) runs
`bugnist_jax.commands.<name>.run()`; the study commands are `python -m bugnist_jax.study.<name>`.
"""
