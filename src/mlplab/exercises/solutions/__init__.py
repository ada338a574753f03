"""Worked solutions of the exercises, one file per exercise under its module's name: each a complete right answer
that `python -m mlplab.exercises check ID --file src/mlplab/exercises/solutions/<name>.py` passes, with the
reasoning in its comments. Read one after trying the exercise."""
