"""mlplab: the lesson's multilayer perceptron on MNIST, as a Lightning + Hydra lab."""

__version__ = "0.1.0"
