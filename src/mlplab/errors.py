class InputError(Exception):
    """Bad input from the user (a config value, a data file): the command line prints it as one line."""
