"""Train the lesson's networks from scratch (NumPy, hand-written backpropagation) on the real MNIST.

    python scripts/from_scratch.py                 # the 784-512-256-10 MLP on all ten digits
    python scripts/from_scratch.py --digits 3 8    # the two-layer binary classifier: 3 (output 0) against 8 (1)

The math is in src/mlplab/scratch/network.py and optim.py; docs/lesson.md maps it to the lesson's formulas.
"""

import argparse
import sys
import time

import numpy as np

from mlplab.engine.runs import REPO
from mlplab.errors import InputError
from mlplab.idx import normalized, read_mnist
from mlplab.scratch.network import SoftmaxMLP, TwoLayerNet, evaluate, train_epoch
from mlplab.scratch.optim import OPTIMIZERS

VAL_SIZE = 5000
DEFAULT_LR = {"gd": 0.1, "momentum": 0.05, "rmsprop": 0.001, "adam": 0.001}
DEFAULT_HIDDEN = {"binary": [128], "multiclass": [512, 256]}

Split = tuple[np.ndarray, np.ndarray]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train the lesson's MLP, or its two-layer binary classifier, from scratch in NumPy on MNIST: "
        "forward and backward passes written by hand, no autograd. Prints the loss and accuracy of every epoch "
        "(training batches, and 5,000 validation images held out of the training set), then the accuracy on the "
        "10,000 test images.",
    )
    parser.add_argument(
        "--digits",
        type=int,
        nargs=2,
        metavar=("NEG", "POS"),
        help="train the binary network (ReLU hidden layer, sigmoid output) to tell digit POS (target 1) from NEG "
        "(target 0); without it, the multi-class network learns all ten digits",
    )
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        metavar="SIZE",
        help=f"hidden layer sizes (default {' '.join(map(str, DEFAULT_HIDDEN['multiclass']))}, the lesson's; "
        f"the binary network has exactly one, default {DEFAULT_HIDDEN['binary'][0]})",
    )
    parser.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="momentum", help="the update rule (default: %(default)s)"
    )
    parser.add_argument(
        "--lr", type=float, help="learning rate (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")"
    )
    parser.add_argument(
        "--momentum",
        type=float,
        default=0.9,
        help="momentum coefficient of --optimizer momentum (default: %(default)s)",
    )
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the initial weights and the batch order (default: %(default)s)"
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="train on only the first N batches of each epoch (a quick check)"
    )
    # The lesson's regularization (§3.4), for the multi-class network; all off by default, as in §5.
    parser.add_argument("--l2", type=float, default=0.0, help="L2 penalty strength on the weights (default: 0)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout probability of hidden units (default: 0)")
    parser.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="early stopping: stop once the validation loss has not improved for N epochs, and test the weights of "
        "its best epoch (default: train every epoch, test the last)",
    )
    args = parser.parse_args(argv)

    task = "binary" if args.digits else "multiclass"
    args.hidden = args.hidden or DEFAULT_HIDDEN[task]
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.digits and (len(set(args.digits)) != 2 or not all(0 <= d <= 9 for d in args.digits)):
        parser.error(f"--digits {args.digits[0]} {args.digits[1]}: give two different digits from 0 to 9")
    if args.digits and len(args.hidden) != 1:
        parser.error(f"--hidden {' '.join(map(str, args.hidden))}: the binary network has one hidden layer")
    if args.digits and (args.l2 or args.dropout):
        parser.error("--l2 and --dropout are for the multi-class network (leave out --digits)")
    if args.l2 < 0 or not 0 <= args.dropout < 1:
        parser.error(f"--l2 {args.l2} --dropout {args.dropout}: need l2 >= 0 and dropout in [0, 1)")
    for name in ("lr", "batch_size", "epochs", "limit", "patience"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} {value}: must be positive")
    if min(args.hidden) < 1:
        parser.error(f"--hidden {' '.join(map(str, args.hidden))}: sizes must be positive")
    return args


def task_split(images: np.ndarray, labels: np.ndarray, digits: list[int] | None) -> Split:
    """Flattened images (N, 784) and their targets: the labels, or for two digits a 0/1 column of the second."""
    if digits is None:
        return images.reshape(len(images), -1), labels
    keep = np.isin(labels, digits)
    return images[keep].reshape(keep.sum(), -1), (labels[keep] == digits[1]).astype(np.float32)[:, None]


def load_mnist(digits: list[int] | None) -> tuple[Split, Split, Split]:
    """The (train, validation, test) splits of the task, images as float32."""
    train_images, train_labels = read_mnist(REPO / "data", train=True)
    test_images, test_labels = read_mnist(REPO / "data", train=False)
    train_images, test_images = normalized(train_images), normalized(test_images)
    train_labels, test_labels = train_labels.astype(np.int64), test_labels.astype(np.int64)
    # A fixed permutation of its own: every run, whatever its seed, validates on the same images.
    order = np.random.default_rng(0).permutation(len(train_labels))
    val, train = order[:VAL_SIZE], order[VAL_SIZE:]
    return (
        task_split(train_images[train], train_labels[train], digits),
        task_split(train_images[val], train_labels[val], digits),
        task_split(test_images, test_labels, digits),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    try:
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_mnist(args.digits)
    except InputError as e:
        sys.exit(f"error: {e}")

    if args.digits:
        net = TwoLayerNet(784, args.hidden[0], rng)
        task, sizes = f"digit {args.digits[1]} (1) against {args.digits[0]} (0)", [784, args.hidden[0], 1]
    else:
        net = SoftmaxMLP([784, *args.hidden, 10], rng, l2=args.l2, dropout=args.dropout)
        task, sizes = "all ten digits", [784, *args.hidden, 10]
    extra = {"momentum": args.momentum} if args.optimizer == "momentum" else {}
    optimizer = OPTIMIZERS[args.optimizer](lr=args.lr, **extra)
    momentum = f" momentum {args.momentum}" if extra else ""
    regularization = "".join(f", {k} {v}" for k, v in (("l2", args.l2), ("dropout", args.dropout)) if v)
    print(
        f"{task}: network {'-'.join(map(str, sizes))}, optimizer {args.optimizer} lr {args.lr}{momentum}, "
        f"batch {args.batch_size}, seed {args.seed}{regularization}"
    )
    print(f"images: {len(y_train)} train, {len(y_val)} validation, {len(y_test)} test")

    start = time.perf_counter()
    best: tuple[float, int, dict] = (np.inf, 0, {})  # the lowest validation loss, its epoch and its weights
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        train_loss, train_acc = train_epoch(net, optimizer, x_train, y_train, args.batch_size, rng, args.limit)
        val_loss, val_acc = evaluate(net, x_val, y_val)
        print(
            f"epoch {epoch}/{args.epochs}  train loss {train_loss:.4f} acc {train_acc:.2%}  "
            f"val loss {val_loss:.4f} acc {val_acc:.2%}  ({time.perf_counter() - epoch_start:.1f} s)"
        )
        if val_loss < best[0]:
            best = (val_loss, epoch, {name: p.copy() for name, p in net.params.items()})
        elif args.patience and epoch - best[1] >= args.patience:
            print(f"early stopping: val loss has not improved for {args.patience} epochs")
            break
    if args.patience and best[2]:  # with early stopping, the best epoch is what is tested, stopped early or not
        print(f"testing the weights of epoch {best[1]}, the lowest val loss ({best[0]:.4f})")
        net.params.update(best[2])
    test_loss, test_acc = evaluate(net, x_test, y_test)
    print(f"test loss {test_loss:.4f} acc {test_acc:.2%}  (total time {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
