"""The one exception type the command line turns into a one-line message."""


class InputError(ValueError):
    """Bad input from a user: a wrong shape, a non-positive width, NaN data,
    an unknown name or an impossible combination of options.

    The message is one line that names the problem; the command line prints it
    and exits with status 2, without a traceback.
    """
