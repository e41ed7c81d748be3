"""Every command is a thin file over `cli.run`: the same one-line errors, flags generated from
the options dataclasses, `--config` variants parsed strictly."""

import dataclasses
import pathlib
import subprocess
import sys

import pytest
from absl import flags

from bugnist_jax import cli
from bugnist_jax.attribution import ExplainRequest, Options
from bugnist_jax.errors import UserError
from bugnist_jax.inspection import LookInsideRequest
from bugnist_jax.options import option, validate

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMANDS = {  # module -> the flags it needs besides a stray argument
  "bugnist_jax.train": ["--config=configs/synthetic3d.py:smoke", "--workdir=/tmp/never"],
  "bugnist_jax.evaluate": ["--workdir=/tmp/never"],
  "bugnist_jax.explain": ["--workdir=/tmp/never"],
  "bugnist_jax.look_inside": ["--workdir=/tmp/never"],
  "bugnist_jax.featurevis": ["--workdir=/tmp/never"],
  "bugnist_jax.make_synthetic": ["--out=/tmp/never"],
  "bugnist_jax.study.shortcut": ["--config=configs/shortcut_study.py:smoke", "--workdir=/tmp/n"],
  "bugnist_jax.study.sanity": ["--config=configs/shortcut_study.py", "--workdir=/tmp/n", "--run=x"],
  "bugnist_jax.study.memorisation": [
    "--config=configs/memorisation_study.py:smoke",
    "--workdir=/n",
  ],
}


def _run(module, *args):
  command = [sys.executable, "-m", module, *args]
  out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
  lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
  return out.returncode, lines


@pytest.mark.parametrize("module", list(COMMANDS))
def test_a_stray_argument_is_one_line_and_exit_2(module):
  code, lines = _run(module, *COMMANDS[module], "stray_argument")
  assert code == 2 and len(lines) == 1, lines
  assert lines[0].startswith("error: unexpected arguments: stray_argument"), lines


@pytest.mark.parametrize("module", ["bugnist_jax.evaluate", "bugnist_jax.study.sanity"])
def test_an_unknown_flag_and_a_missing_workdir_are_one_line(module):
  code, lines = _run(module, "--no_such_flag=1")
  assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), lines


def test_an_unknown_config_variant_names_the_file_and_the_valid_ones():
  code, lines = _run("bugnist_jax.train", "--config=configs/caltech2d.py:arch4", "--workdir=/x")
  assert code == 2 and len(lines) == 1, lines
  assert "caltech2d.py: unknown variant 'arch4'; valid: arch1, arch2, arch3, smoke" in lines[0]
  code, lines = _run(
    "bugnist_jax.train", "--config=configs/caltech2d.py:arch1,arch3", "--workdir=/x"
  )
  assert code == 2 and "exclude each other" in lines[0], lines


def test_a_misspelled_model_field_in_a_config_file_names_it(tmp_path):
  config = tmp_path / "typo.py"
  config.write_text(
    "from bugnist_jax import config_defaults\n\n\ndef get_config():\n"
    "  c = config_defaults.base(model='cnn2d')\n  c.model.dens = 3\n  return c\n"
  )
  code, lines = _run("bugnist_jax.train", f"--config={config}", f"--workdir={tmp_path / 'w'}")
  assert code == 2 and len(lines) == 1, lines
  assert "config.model.dens: not a field of model 'cnn2d'; valid: arch, " in lines[0], lines


def test_every_field_of_the_explain_request_is_a_flag():
  values = flags.FlagValues()
  cli.define_dataclass(ExplainRequest, values)
  names = {f.name for f in dataclasses.fields(ExplainRequest) if f.name != "options"}
  names |= {f.name for f in dataclasses.fields(Options)}
  assert names <= set(values)
  values(["explain", "--method=grad_cam,smoothgrad", "--num_samples=3", "--indices=2,5"])
  request = cli.from_flags(ExplainRequest, values)
  assert request.method == ("grad_cam", "smoothgrad") and request.indices == (2, 5)
  assert request.options.num_samples == 3 and request.options.sigma == Options().sigma


def test_a_new_options_field_gets_its_flag_and_its_range_for_free():
  @dataclasses.dataclass(frozen=True)
  class Request:
    widths: tuple[int, ...] = option((8,), "Widths.", min=1)
    rate: float = option(0.5, "A rate.", above=0.0)

  values = flags.FlagValues()
  cli.define_dataclass(Request, values)
  values(["cmd", "--widths=4,16", "--rate=0.25"])
  assert validate(cli.from_flags(Request, values)) == Request((4, 16), 0.25)
  values(["cmd", "--rate=-1"])
  with pytest.raises(UserError, match="--rate: -1.0 must be > 0.0"):
    validate(cli.from_flags(Request, values))
  with pytest.raises(UserError, match="--top_k: 0 must be >= 1"):
    validate(LookInsideRequest(top_k=0))
