"""Hyperparameter search with Optuna (`python src/search.py`): trials train in-process, unpromising ones are pruned
after a validation epoch, the study lives in an Optuna storage, a second call resumes it, and the best trial becomes
an experiment config. Workers coordinate through the storage alone: each running trial sends heartbeats, and a trial
whose worker died is failed by another worker after search.grace_period and run again (Optuna's
RetryHeartbeatStaleTrialCallback).

- command.py: what src/search.py runs;
- space.py: search.space as distributions, the checks before the first trial;
- storage.py: the storage and the study;
- workers.py: a worker's loop;
- trials.py: one trial, and its pruning;
- best.py: the best trial written as configs.
"""
