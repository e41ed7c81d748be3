"""Studies built on training and attribution: shortcut learning and saliency sanity checks.

python -m bugnist_jax.study.shortcut --workdir=DIR [--config=configs/shortcut_study.py]
python -m bugnist_jax.study.sanity --workdir=DIR --run=TRAINED_RUN_DIR
"""
