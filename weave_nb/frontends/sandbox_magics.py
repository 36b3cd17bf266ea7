"""The ``%weave_sandbox start|stop|status`` line magic.

``register(ipython)`` adds it to a shell (``%load_ext weave_nb`` calls it);
``%load_ext weave_nb.frontends.sandbox_magics`` loads it on its own. Each shell keeps
its own :class:`~weave_nb.sandbox.session.Sandbox`.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.errors import WeaveError
from .shared import classify
from .magics import help_flag, parse_argstring
from ..sandbox.session import SERVICES, Sandbox, SandboxStatus


@magics_class
class SandboxMagics(Magics):
    """Holds this shell's sandbox and the magic that drives it."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.sandbox: Sandbox | None = None

    @help_flag
    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=["start", "stop", "status"], help="what to do (default: status)")
    @argument("--only", choices=list(SERVICES), action="append", help="start only this stand-in: aws or gcp (repeatable)")
    @line_magic
    def weave_sandbox(self, line: str = "") -> SandboxStatus:
        """Start, stop or show the local stand-ins for AWS and Cloud Functions.

        ``%weave_sandbox start`` runs the AWS emulator and the Cloud Functions
        fake on 127.0.0.1 and points the aws and gcp providers at them for this
        session; ``%weave_sandbox stop`` stops them and restores the
        environment; ``%weave_sandbox status`` shows what runs.

        Returns:
            The sandbox status (shown as the cell's output).
        """
        try:
            args = parse_argstring(self.weave_sandbox, line)
        except UsageError:
            raise
        except SystemExit as exc:  # argparse on bad input
            raise UsageError(f"%weave_sandbox: {exc}") from None
        try:
            if args.action == "start":
                wanted = tuple(args.only or SERVICES)
                if self.sandbox is not None and self.sandbox.is_running:
                    return self.sandbox.add(wanted)  # starts what is missing, e.g. aws beside a running gcp
                self.sandbox = Sandbox(services=wanted)
                return self.sandbox.start()
            if args.action == "stop":
                if self.sandbox is None:
                    return Sandbox(services=()).status()
                status = self.sandbox.stop()
                self.sandbox = None
                return status
            return self.sandbox.status() if self.sandbox is not None else Sandbox(services=()).status()
        except WeaveError as exc:
            raise UsageError(classify(exc).plain()) from None


def register(ipython: Any) -> SandboxMagics:
    """Add ``%weave_sandbox`` to ``ipython`` and return the magics instance."""
    magics = SandboxMagics(shell=ipython)
    ipython.register_magics(magics)
    return magics


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext weave_nb.frontends.sandbox_magics``: register the magic on its own."""
    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop a running sandbox when the extension is unloaded."""
    for magics in list(ipython.magics_manager.registry.values()):
        if isinstance(magics, SandboxMagics) and magics.sandbox is not None:
            magics.sandbox.stop()
            magics.sandbox = None
