"""Tests for bugnist_jax.viz: pure array helpers, PNG figures and the ImageJ TIFF export."""

import matplotlib.image as mpimg
import numpy as np
import pytest
import tifffile

from bugnist_jax import viz

Z, Y, X = 32, 8, 8  # depth 4x the width, like (and more than) BugNIST's 2x


def _blob(center, shape=(Z, Y, X), width=2.0) -> np.ndarray:
  grid = np.indices(shape, dtype=np.float32)
  d2 = sum((g - c) ** 2 for g, c in zip(grid, center, strict=True))
  return np.exp(-d2 / (2 * width**2)).astype(np.float32)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
  rng = np.random.default_rng(0)
  return _blob((16, 4, 4), width=3.0) + 0.1 * rng.random((Z, Y, X), dtype=np.float32)


@pytest.fixture(scope="module")
def saliency() -> np.ndarray:
  return _blob((24, 2, 5))


def _check_png(path) -> np.ndarray:
  """A non-empty, readable PNG with RGB(A) pixels that are not all one colour."""
  assert path.exists() and path.stat().st_size > 0
  img = mpimg.imread(path)
  assert img.ndim == 3 and img.shape[-1] in (3, 4)
  assert np.ptp(img[..., :3]) > 0.1
  return img


# --- pure helpers ---------------------------------------------------------------------------


def test_confusion_percent_rows_sum_to_100():
  cm = np.array([[1, 3, 0], [0, 0, 0], [2, 2, 4]])
  pct = viz.confusion_percent(cm)
  np.testing.assert_allclose(pct[0], [25.0, 75.0, 0.0])
  np.testing.assert_allclose(pct[1], 0.0)  # a class without samples
  np.testing.assert_allclose(pct[[0, 2]].sum(axis=1), 100.0)
  counts = np.random.default_rng(1).integers(0, 50, (12, 12)) + 1
  np.testing.assert_allclose(viz.confusion_percent(counts).sum(axis=1), 100.0)


@pytest.mark.parametrize("cm", [np.ones((3, 4)), np.ones(3), np.ones((2, 2, 2)), -np.eye(2)])
def test_confusion_bad_matrix_raises(cm, tmp_path):
  with pytest.raises(ValueError, match="cm"):
    viz.plot_confusion_matrix(cm, ["a"] * len(cm), tmp_path / "cm.png")


def test_confusion_wrong_number_of_names_raises(tmp_path):
  with pytest.raises(ValueError, match="class_names"):
    viz.plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "cm.png")


def test_max_projections_shapes_and_values(volume):
  mz, my, mx = viz.max_projections(volume[..., None])  # a trailing channel axis is accepted
  assert (mz.shape, my.shape, mx.shape) == ((Y, X), (Z, X), (Z, Y))
  for a, m in enumerate((mz, my, mx)):
    np.testing.assert_array_equal(m, volume.max(axis=a))


def test_signed_projection_keeps_the_largest_magnitude():
  v = np.zeros((4, 2, 2), np.float32)
  v[1, 0, 0], v[3, 0, 0] = 0.5, -2.0  # the negative value is the stronger one
  mz, _, _ = viz.max_projections(v, signed=True)
  assert mz[0, 0] == -2.0 and viz.max_projections(v)[0][0, 0] == 0.5


def test_peak_slices_go_through_the_argmax(volume, saliency):
  peak, vol_slices, sal_slices = viz.peak_slices(volume, saliency)
  assert peak == (24, 2, 5) == viz.peak_index(saliency)
  z, y, x = peak
  for got, want in zip(vol_slices, (volume[z], volume[:, y], volume[:, :, x]), strict=True):
    np.testing.assert_array_equal(got, want)
  assert sal_slices[0].max() == saliency.max()
  signed = -saliency  # the peak of a signed map is its largest magnitude
  assert viz.peak_index(signed) == peak
  with pytest.raises(ValueError, match="saliency"):
    viz.peak_slices(volume, saliency[:-1])


@pytest.mark.parametrize("depth,step", [(32, None), (64, None), (32, 5), (7, 100), (1, None)])
def test_montage_indices(depth, step):
  idx = viz.montage_indices(depth, step)
  assert 1 <= len(idx) <= 16 and idx.min() >= 0 and idx.max() < depth
  if len(idx) > 1:
    assert len(set(np.diff(idx))) == 1  # evenly spaced


def test_saliency_rgba_alpha_follows_magnitude():
  m = np.array([[0.0, 0.5, 1.0]])
  rgba = viz.saliency_rgba(m, alpha=0.8)
  assert rgba.shape == (1, 3, 4)
  assert rgba[0, 0, 3] == 0.0 and rgba[0, 2, 3] == pytest.approx(0.8)
  assert rgba[0, 0, 3] < rgba[0, 1, 3] < rgba[0, 2, 3]
  s = viz.saliency_rgba(np.array([[-1.0, 1.0]]))  # signed: opposite colours, same opacity
  assert s[0, 0, 3] == s[0, 1, 3] and not np.allclose(s[0, 0, :3], s[0, 1, :3])


def test_feature_panels_order_and_limit():
  acts = np.random.default_rng(2).random((6, 5, 10)).astype(np.float32)
  acts[..., 7] += 3.0
  idx, panels = viz.feature_panels(acts, max_channels=4, order="strongest")
  assert idx[0] == 7 and panels.shape == (4, 6, 5)
  np.testing.assert_array_equal(panels[0], acts[..., 7])
  idx3, p3 = viz.feature_panels(np.stack([acts, 2 * acts]), mode="middle")
  assert list(idx3) == list(range(10)) and np.allclose(p3[0], 2 * acts[..., 0])
  with pytest.raises(ValueError, match="acts"):
    viz.feature_panels(acts[..., 0])


# --- figures ----------------------------------------------------------------------------------


def _figures(volume, saliency):
  rng = np.random.default_rng(3)
  img_rgb = rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)
  signed = None if saliency is None else saliency - _blob((6, 4, 4))
  m2 = _blob((8, 12), (16, 24), 3.0)
  sigmas = [0.0, 0.1, 0.2]
  return {
    "confusion": lambda p: viz.plot_confusion_matrix(
      rng.integers(0, 9, (5, 5)), list("ABCDE"), p, "cm"
    ),
    "confusion_counts": lambda p: viz.plot_confusion_matrix(
      np.eye(3) * 4, list("abc"), p, percent=False
    ),
    "mips": lambda p: viz.plot_mips(volume, p, title="mips"),
    "mips_map": lambda p: viz.plot_mips(volume, p, saliency, "mips + map"),
    "ortho": lambda p: viz.plot_ortho_slices(volume, signed, p, "ortho"),
    "montage": lambda p: viz.plot_slice_montage(volume, p, saliency, step=4, title="montage"),
    "panel": lambda p: viz.plot_explanation_panel(volume, saliency, p, "true: BL  predicted: BL"),
    "sweep": lambda p: viz.plot_sigma_sweep(
      [volume, volume], [[saliency * (1 + s) for s in sigmas]] * 2, sigmas, p, "sweep", ["a", "b"]
    ),
    "grid_rgb": lambda p: viz.plot_saliency_grid(img_rgb, {"grad": m2 - 0.5, "sg": m2}, p, "grid"),
    "overlay_gray": lambda p: viz.plot_overlay(img_rgb[..., 0], m2[..., None], p, "overlay"),
    "features_2d": lambda p: viz.plot_feature_maps(rng.random((8, 8, 5)), p, "f2d"),
    "features_3d": lambda p: viz.plot_feature_maps(rng.random((4, 8, 8, 40)), p, max_channels=9),
    "patches": lambda p: viz.plot_patch_grid(
      [[img_rgb, img_rgb[..., 0]], [img_rgb]], p, [["x", "y"], ["z"]], ["c0", "c1"], "patches"
    ),
    "curves": lambda p: viz.plot_curves(
      np.linspace(0, 1, 5), {"del": rng.random((3, 5)), "ins": np.arange(5.0)}, p, "f", "p", "dc"
    ),
  }


FIGURES = list(_figures(None, None))


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_writes_a_valid_png(name, volume, saliency, tmp_path):
  path = tmp_path / "sub" / f"{name}.png"  # parent folders are created
  fig = _figures(volume, saliency)[name](path)
  assert fig.get_axes()
  _check_png(path)


def test_depth_axis_is_not_squashed(volume, saliency, tmp_path):
  # Z is 4x Y and X: a row of views along z, y, x is (X + Z + Z) / Y = 9 voxels wide per voxel
  # of height, so the image must be much wider than tall; squashing Z would make it ~3:1.
  viz.plot_mips(volume, tmp_path / "m.png")
  img = _check_png(tmp_path / "m.png")
  assert img.shape[1] > 4 * img.shape[0]


def test_overlay_shape_mismatch_raises(volume, saliency, tmp_path):
  with pytest.raises(ValueError, match="saliency"):
    viz.plot_explanation_panel(volume, saliency[:, :-1], tmp_path / "p.png")
  with pytest.raises(ValueError, match="maps"):
    viz.plot_saliency_grid(np.zeros((8, 8)), {"g": np.zeros((8, 9))}, tmp_path / "g.png")
  with pytest.raises(ValueError, match="maps"):
    viz.plot_sigma_sweep(volume, [saliency], [0.1, 0.2], tmp_path / "s.png")
  with pytest.raises(ValueError, match="x"):
    viz.plot_curves(np.zeros((2, 2)), {"a": np.zeros(2)}, tmp_path / "c.png")


# --- TIFF -------------------------------------------------------------------------------------


def test_imagej_stack_round_trip(tmp_path):
  rng = np.random.default_rng(4)
  vol = rng.integers(0, 255, (Z, Y, X, 1), dtype=np.uint8)
  maps = {"smoothgrad": rng.random((Z, Y, X)), "ig": rng.normal(size=(Z, Y, X))}
  path = viz.save_imagej_stack(tmp_path / "out" / "x.tif", vol, maps, spacing=(2.0, 1.0, 0.5))
  with tifffile.TiffFile(path) as tif:
    assert tif.is_imagej
    series = tif.series[0]
    assert series.axes == "ZCYX" and series.shape == (Z, 3, Y, X)
    data = tif.asarray()
    meta = tif.imagej_metadata
    x_res = tif.pages[0].tags["XResolution"].value
  assert data.dtype == np.float32
  np.testing.assert_array_equal(data[:, 0], vol[..., 0])
  np.testing.assert_allclose(data[:, 1], maps["smoothgrad"], rtol=1e-6)
  np.testing.assert_allclose(data[:, 2], maps["ig"], rtol=1e-6)
  assert meta["channels"] == 3 and meta["slices"] == Z and meta["mode"] == "composite"
  assert list(meta["Labels"][:3]) == ["volume", "smoothgrad", "ig"]
  assert meta["spacing"] == 2.0 and x_res[0] / x_res[1] == 2.0  # 1 / 0.5 pixels per unit


def test_imagej_stack_single_map_and_bad_shape(tmp_path):
  vol = np.ones((4, 3, 2), np.float32)
  path = viz.save_imagej_stack(tmp_path / "y.tif", vol, np.full((4, 3, 2), -1.0))
  with tifffile.TiffFile(path) as tif:
    assert tif.series[0].shape == (4, 2, 3, 2)
    assert tif.imagej_metadata["Labels"][1] == "saliency"
    np.testing.assert_array_equal(tif.asarray()[:, 1], -1.0)
  with pytest.raises(ValueError, match="maps"):
    viz.save_imagej_stack(tmp_path / "z.tif", vol, {"bad": np.ones((4, 3, 3))})


def test_imagej_channels_names_every_volume(tmp_path):
  vols = {f"c{i}": np.full((Z, Y, X, 1), 10 * i, np.uint8) for i in range(3)}
  path = viz.save_imagej_channels(tmp_path / "fv.tif", vols)
  with tifffile.TiffFile(path) as tif:
    assert tif.series[0].axes == "ZCYX" and tif.series[0].shape == (Z, 3, Y, X)
    assert list(tif.imagej_metadata["Labels"][:3]) == ["c0", "c1", "c2"]
    np.testing.assert_array_equal(tif.asarray()[:, 2], 20)
  with pytest.raises(ValueError, match="volumes"):
    viz.save_imagej_channels(
      tmp_path / "bad.tif", {"a": np.ones((4, 3, 2)), "b": np.ones((4, 3, 3))}
    )
