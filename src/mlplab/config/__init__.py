"""Checking a composed config before anything heavy starts: every bad value ends in one line naming its key.

Who opens it: whoever adds a rule or a check.
- rules.py: the small language of ranges (`within("[0, 1)")`, `one_of(...)`, and the text options write in their
  `_ranges_`);
- checks.py: check_config, which runs the config's own rules, each option's and the checks across keys;
- trust.py: what a checkpoint's hyperparameters may build;
- preflight.py: builds each part of the config on a tiny example, to catch what no rule can see;
- overrides.py: the command line's overrides, and the folder names made of them;
- diff.py: the differences between two configs (a resume, a sweep's continuation, a search).
"""
