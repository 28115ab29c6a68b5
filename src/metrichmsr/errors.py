"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class InputError(ValueError):
    """Bad user input (file, image, flag value). Its message is shown as is, on one line."""
