"""The engine: how the lab runs a fit fast and safely. A learner need not open it.

Who opens it: whoever changes how training is executed, not what is trained.
- execution.py: steps_per_execution, Lightning handing the module several batches at once, counted in batches;
- steps.py: the machinery around each optimizer step (accumulation, clipping, the direct path, the log records)
  that mlplab.module's one-batch loop calls;
- callbacks.py: the callbacks of every run (the network's summary, progress line, history, random state,
  interruption);
- dashboards.py, drawing.py, hparams.py: what TensorBoard shows (images, histograms, the HParams table);
- checkpoints.py, runs.py: checkpoint files and run folders, written atomically;
- distributed.py: DDP under Hydra.

It imports nothing of the lab but mlplab.errors and mlplab.idx: the learner's modules build on it, not it on them.
"""
