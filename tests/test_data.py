import gzip

import pytest
import torch

from mlplab.data import MNISTDataModule, TensorLoader
from mlplab.engine.execution import Executions, Plan
from mlplab.errors import InputError
from mlplab.idx import MEAN, MNIST_MD5, STD
from mlplab.mnist import REPO_DATA_DIR, prepare_mnist

from conftest import real_data


def copy_dataset(src, dst):
    raw = dst / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (src / "MNIST" / "raw").glob("*.gz"):
        (raw / f.name).write_bytes(f.read_bytes())
    return raw


@pytest.fixture
def datamodule(synthetic_mnist):
    data_dir, md5 = synthetic_mnist
    dm = MNISTDataModule(data_dir=str(data_dir), batch_size=50, eval_batch_size=64, val_size=200, md5=md5)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_gz_files_are_decompressed_and_verified(synthetic_mnist, tmp_path):
    data_dir, md5 = synthetic_mnist
    raw = copy_dataset(data_dir, tmp_path)
    assert prepare_mnist(tmp_path, md5) == raw
    for name in md5:
        assert (raw / name).read_bytes() == gzip.decompress((raw / f"{name}.gz").read_bytes())
    assert not list(raw.glob("*.tmp"))


def test_splits_hold_normalized_tensors(datamodule, synthetic_mnist):
    train_x, train_y = datamodule.splits["train"]
    val_x, val_y = datamodule.splits["val"]
    test_x, test_y = datamodule.splits["test"]
    assert train_x.shape == (800, 1, 28, 28) and val_x.shape == (200, 1, 28, 28) and test_x.shape == (300, 1, 28, 28)
    assert train_x.dtype == torch.float32 and train_y.dtype == torch.int64
    # A white pixel (255) maps to (1 - mean) / std: the lesson's constants are applied once, here.
    assert train_x.max().item() == pytest.approx((1 - MEAN) / STD)
    assert train_x.min().item() >= -MEAN / STD - 1e-6


def test_validation_split_is_disjoint_and_independent_of_the_run_seed(synthetic_mnist):
    data_dir, md5 = synthetic_mnist
    splits = []
    for seed in (0, 1):
        dm = MNISTDataModule(data_dir=str(data_dir), val_size=200, seed=seed, md5=md5)
        dm.prepare_data()
        dm.setup("fit")
        splits.append(dm.splits)
    assert torch.equal(splits[0]["val"][0], splits[1]["val"][0])
    train_rows = {tuple(r.tolist()) for r in splits[0]["train"][0].flatten(1)[:, :200]}
    val_rows = {tuple(r.tolist()) for r in splits[0]["val"][0].flatten(1)[:, :200]}
    assert not train_rows & val_rows


def test_training_batches_reshuffle_each_epoch_and_cover_the_split():
    images, labels = torch.arange(10).float().view(10, 1), torch.arange(10)
    loader = TensorLoader(images, labels, batch_size=4, train=True, seed=3)
    assert len(loader) == 3
    first = torch.cat([y for _, y in loader])
    again = torch.cat([y for _, y in loader])
    loader.set_epoch(1)
    second = torch.cat([y for _, y in loader])
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())
    assert torch.equal(first, again)  # the order depends on (seed, epoch) only: resumable
    assert not torch.equal(first, second)
    assert [len(y) for _, y in loader] == [4, 4, 2]
    for x, y in loader:
        assert torch.equal(x.view(-1), y.float())  # images stay paired with their labels


def labels_of(execution) -> list[list[int]]:
    return [batch.labels.tolist() for _, batch in execution]


def test_executions_group_batches_end_at_validations_and_resume_from_their_state():
    images, labels = torch.zeros(23, 1), torch.arange(23)
    epoch = 0
    loader = TensorLoader(images, labels, batch_size=2, train=False)  # 12 batches, in order
    plan = Plan(steps_per_execution=5, val_check_interval=4, limit_train_batches=11)
    executions = Executions(loader, plan, lambda: epoch)
    groups = [(e.first, e.size, e.last) for e in executions]
    # 11 batches, never more than 5 at once, and an execution ends at batches 4 and 8 (validations).
    assert groups == [(0, 4, False), (4, 4, False), (8, 3, True)]
    iterator = iter(executions)
    assert labels_of(next(iterator)) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    state = executions.state_dict()
    assert state == {"epoch": 0, "batches": 4, "steps_per_execution": 5}
    resumed = Executions(loader, Plan(steps_per_execution=2, limit_train_batches=11), lambda: 99)
    resumed.load_state_dict(state)
    rest = [labels_of(execution) for execution in resumed]
    assert rest[0] == [[8, 9], [10, 11]] and len(rest) == 4  # batches 4..10 of epoch 0, in executions of 2
    assert resumed.state_dict() == {"epoch": 0, "batches": 11, "steps_per_execution": 2}
    finished = Executions(loader, plan, lambda: 0)
    finished.load_state_dict(resumed.state_dict())  # saved after the epoch's last batch: the next epoch
    following = list(finished)
    assert [e.first for e in following] == [0, 4, 8]
    assert labels_of(following[0]) == [[0, 1], [2, 3], [4, 5], [6, 7]] and finished.state_dict()["epoch"] == 1


def test_ranks_get_disjoint_equal_training_shards_and_full_evaluation_shards():
    images, labels = torch.zeros(11, 1), torch.arange(11)
    train = [torch.cat([y for _, y in TensorLoader(images, labels, 3, True, rank=r, world_size=2)]) for r in (0, 1)]
    assert len(train[0]) == len(train[1]) == 5
    assert not set(train[0].tolist()) & set(train[1].tolist())
    evals = [torch.cat([y for _, y in TensorLoader(images, labels, 3, False, rank=r, world_size=2)]) for r in (0, 1)]
    assert sorted(evals[0].tolist() + evals[1].tolist()) == list(range(11))


def test_corrupted_gz_file_names_the_file_and_the_fix(synthetic_mnist, tmp_path):
    data_dir, md5 = synthetic_mnist
    raw = copy_dataset(data_dir, tmp_path)
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:20])
    with pytest.raises(InputError, match=r"t10k-labels-idx1-ubyte\.gz: cannot be decompressed .*git checkout"):
        prepare_mnist(tmp_path, md5)
    assert not (raw / "t10k-labels-idx1-ubyte").exists()


def test_corrupted_data_file_names_the_file_and_the_expected_md5(synthetic_mnist, tmp_path):
    data_dir, md5 = synthetic_mnist
    raw = copy_dataset(data_dir, tmp_path)
    prepare_mnist(tmp_path, md5)
    path = raw / "train-images-idx3-ubyte"
    content = bytearray(path.read_bytes())
    content[1000] ^= 0xFF
    path.write_bytes(bytes(content))
    expected = md5["train-images-idx3-ubyte"]
    with pytest.raises(
        InputError, match=rf"train-images-idx3-ubyte: md5 is [0-9a-f]{{32}}, expected {expected}; delete"
    ):
        prepare_mnist(tmp_path, md5)


def test_missing_files_fall_back_to_download_and_say_what_to_do_when_it_fails(tmp_path, monkeypatch):
    import torchvision

    calls = []

    def offline(self):
        calls.append(self.root)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://mirror/, got:\nno network\n")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(InputError) as error:
        prepare_mnist(tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"data.data_dir={tmp_path}: {tmp_path / 'MNIST' / 'raw'} misses train-images-idx3-ubyte, "
    )
    assert (
        "download failed (Error downloading train-images-idx3-ubyte.gz: Tried https://mirror/, got: no network)"
        in message
    )
    assert message.endswith(f"this repository ships them in {REPO_DATA_DIR}/MNIST/raw)")
    assert [str(root) for root in calls] == [str(tmp_path)]


def test_validation_size_must_leave_training_images(synthetic_mnist):
    data_dir, md5 = synthetic_mnist
    dm = MNISTDataModule(data_dir=str(data_dir), val_size=1000, md5=md5)
    dm.prepare_data()
    with pytest.raises(InputError, match=r"data.val_size=1000: must be between 0 \(no validation set\) and 999"):
        dm.setup("fit")


@real_data
def test_real_mnist_matches_the_official_files():
    raw = prepare_mnist(REPO_DATA_DIR)
    assert sorted(p.name for p in raw.glob("*-ubyte")) == sorted(MNIST_MD5)
    dm = MNISTDataModule()
    dm.setup("fit")
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [55_000, 5_000, 10_000]
    test_counts = torch.bincount(dm.splits["test"][1]).tolist()
    assert test_counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    all_train = torch.cat([dm.splits["train"][0], dm.splits["val"][0]])
    assert all_train.mean().item() == pytest.approx(0.0, abs=1e-3)  # normalized with MNIST's own mean and std
    assert all_train.std().item() == pytest.approx(1.0, abs=1e-3)
