"""The lesson's mathematics written by hand in NumPy, with no torch: neurons, losses, the two-layer network's forward
and backward passes (network.py) and the optimizers' update rules (optim.py). scripts/from_scratch.py trains with it.

Who opens it: a learner who wants to see backpropagation without autograd.
"""
