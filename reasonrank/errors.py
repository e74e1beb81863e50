"""The error every reader of user input raises: malformed or missing input, said in one line."""


class InputError(ValueError):
    """Malformed or missing input; the message says which file, line and field."""
