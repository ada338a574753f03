"""mlplab: the lesson's multilayer perceptron on MNIST, as a Lightning + Hydra lab.

Grouped by who opens a file (each folder's __init__ says more):
- here, the learner's core: module.py (the LightningModule, whose `training_batch` is the lesson's §5.4 loop),
  models/ (one network per file), losses.py, penalties.py, mnist.py, data.py and augment.py (MNIST), training.py
  (build, fit, test, report), cli.py (how a command ends: one line for bad input);
- engine/: how a fit runs fast and safely (steps_per_execution, callbacks, checkpoints, run folders, TensorBoard);
- config/: the checks of a composed config;
- experiments/: many runs (sweeps and their tables, statistics, the Optuna search, the learning-rate range test);
- use/: a trained model (eval, predict, export, the digit pad);
- scratch/: the lesson's math in NumPy, no torch.
"""

__version__ = "0.2.0"
