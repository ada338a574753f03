"""Worked solution of exercise dropout: inverted dropout, as torch.nn.Dropout."""


def dropout(a, p, rng, training):
    if not training or p == 0:
        # At test time every unit is kept and nothing is scaled: the scaling was done while training.
        return a.copy()
    # Each unit is kept with probability 1 - p. The rng passed in makes the mask reproducible from its seed.
    keep = rng.random(a.shape) >= p
    # A kept unit is divided by 1 - p so that its expected output, (1 - p) * a / (1 - p), is a itself: the next
    # layer sees the same mean while training and at test time, so testing needs no change.
    return a * keep / (1 - p)
