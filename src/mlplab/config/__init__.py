"""Checking a composed config before anything heavy starts: every bad value ends in one line naming its key.

Who opens it: whoever adds a rule or a check.
- rules.py: the small language of ranges (`within("[0, 1)")`, `one_of(...)`) and the table of rules;
- checks.py: check_config, which runs the rules and the checks across keys;
- preflight.py: builds each part of the config on a tiny example, to catch what no rule can see;
- overrides.py: the command line's overrides, and the folder names made of them;
- diff.py: the differences between two configs (a resume, a sweep's continuation, a search).
"""
