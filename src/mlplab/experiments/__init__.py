"""Many runs and what they answer: sweeps and their results tables, the statistics behind their verdicts, continuing a
sweep after a crash, one writer and one command per sweep folder, the learning-rate range test, and the Optuna search.

Who opens it: whoever compares runs, not whoever trains one.
"""
