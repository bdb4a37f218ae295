"""A board's own software, emulated: an aarch64 Python root and the board's wheels, cached
(``root``, ``wheels``), and the check that runs a bundle there under qemu-user and compares
it with the host's run (``check``, with ``child`` the process that runs inside)."""
