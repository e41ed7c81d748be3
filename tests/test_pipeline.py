import numpy as np
import pytest

from bugnist_jax.data import pipeline, transforms


class CountingSource:
  """Item i is an image filled with i (so batches say which items they hold)."""

  def __init__(self, n, shape=(4, 2, 2)):
    self.n, self.shape = n, shape

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    image = np.full((*self.shape, 1), i, np.uint8)
    mask = np.zeros(self.shape, np.uint8)
    mask[0, 0, 0] = 1
    return {"image": image, "label": np.int32(i % 3), "object_mask": mask}

  def __repr__(self):
    return f"CountingSource({self.n})"

  def labels(self):
    return np.arange(self.n) % 3


def _items(batch):
  return batch["image"].reshape(len(batch["image"]), -1)[:, 0].tolist()


def test_training_stream_reshuffles_every_epoch_and_drops_the_remainder():
  ds = pipeline.train_dataset(CountingSource(10), batch_size=4, seed=0, augment=False)
  it = iter(ds)
  batches = [_items(next(it)) for _ in range(5)]  # 2 batches per epoch of 10 (2 dropped)
  assert all(len(b) == 4 for b in batches)
  epoch1, epoch2 = batches[0] + batches[1], batches[2] + batches[3]
  assert len(set(epoch1)) == 8 and set(epoch1) <= set(range(10))
  assert epoch1 != epoch2  # a new permutation each epoch
  again = iter(pipeline.train_dataset(CountingSource(10), batch_size=4, seed=0, augment=False))
  assert [_items(next(again)) for _ in range(5)] == batches  # seeded


def test_iterator_state_restores_the_position():
  it = iter(pipeline.train_dataset(CountingSource(10), batch_size=4, seed=1))
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it)["image"] for _ in range(3)]
  fresh = iter(pipeline.train_dataset(CountingSource(10), batch_size=4, seed=1))
  fresh.set_state(state)
  for want in expected:
    np.testing.assert_array_equal(next(fresh)["image"], want)


def test_eval_batches_pad_the_last_batch_and_mark_it():
  batches = list(pipeline.eval_batches(CountingSource(10), batch_size=4))
  assert [b["image"].shape[0] for b in batches] == [4, 4, 4]
  assert batches[-1]["valid"].tolist() == [True, True, False, False]
  seen = [i for b in batches for i, v in zip(_items(b), b["valid"], strict=True) if v]
  assert seen == list(range(10))


def test_flip_rotate_moves_masks_with_the_image():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 255, (6, 4, 4, 1), dtype=np.uint8)
  mask = (image[..., 0] > 128).astype(np.uint8)
  for seed in range(8):
    out, out_mask = transforms.random_flip_rotate(image, np.random.default_rng(seed), mask)
    assert out.shape == image.shape and out_mask.shape == mask.shape
    np.testing.assert_array_equal(out_mask, (out[..., 0] > 128).astype(np.uint8))
    assert sorted(out.ravel()) == sorted(image.ravel())


def test_remove_packing_keeps_the_largest_bright_component():
  vol = np.full((20, 8, 8, 1), 30, np.uint8)
  vol[8:14, 2:6, 2:6] = 200  # the bug: 96 voxels
  vol[0:2, :, :] = 150  # cotton at one end: 128 voxels but split below
  vol[0:2, :, 4] = 30
  vol[18:20, 0:3, 0:3] = 150  # cotton at the other end: 18 voxels
  out = transforms.remove_packing(vol, threshold=90)
  assert (out[8:14, 2:6, 2:6] == 200).all()
  assert out[:2].max() == 0 and out[18:].max() == 0
  assert (out[vol < 90] == 0).all()
  blank = transforms.remove_packing(vol, threshold=90, min_size=1000)
  assert blank.max() == 0


def test_normalization_standardises_and_runs_in_the_graph():
  images = [
    np.random.default_rng(i).integers(0, 255, (4, 4, 4, 1), dtype=np.uint8) for i in range(3)
  ]
  norm = transforms.Normalization.fit(images)
  x = np.asarray(norm(np.stack(images)))
  assert x.dtype == np.float32
  assert abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-4


@pytest.mark.parametrize("shape", [(6, 4, 4, 1), (8, 8, 3)])
def test_flip_rotate_handles_2d_and_3d(shape):
  image = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
  out = transforms.random_flip_rotate(image, np.random.default_rng(3))[0]
  assert out.shape == image.shape
