"""mlplab: the lesson's multilayer perceptron on MNIST, as a Lightning + Hydra lab."""

import logging
import warnings

__version__ = "0.1.0"

# Lightning 2.6 calls a pytree API that torch 2.14 deprecates: nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# Lightning cannot see that the training loader resumes mid-epoch by itself (mlplab.data, position()).
warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")
# Lightning advertises its cloud services in every run's output: noise in an offline lab.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: not r.getMessage().startswith("💡"))
