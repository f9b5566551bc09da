"""Runs inside every sandbox kernel at start (IPKernelApp.exec_files).

* the working directory is /mnt/data, where uploads are and where files to hand back go,
  and modules there can be imported (the kernel itself started without it on sys.path);
* a normal umask for the user's files (the launcher starts the kernel with 0 so that
  the host can reach the kernel's sockets);
* matplotlib draws inline (MPLBACKEND is set by the launcher) and a Figure passed to
  ``display()`` renders as PNG even when pyplot was never imported.

This file runs in the user's namespace, so it leaves exactly nothing behind.
"""


def _lci_startup() -> None:
    import os

    os.umask(0o022)
    workdir = os.environ.pop("LCI_WORKDIR", "/mnt/data")
    if os.path.isdir(workdir):
        os.chdir(workdir)
    import sys

    # the kernel started in isolated mode, from /: only now, with everything of the
    # kernel's own imported, may the user's modules in /mnt/data be imported, as in Jupyter
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - always present in a kernel
        return
    shell = get_ipython()
    if shell is None:
        return

    def figure_png(fig: object) -> bytes | None:
        from IPython.core.pylabtools import print_figure

        return print_figure(fig, "png")

    png = shell.display_formatter.formatters["image/png"]
    png.for_type_by_name("matplotlib.figure", "Figure", figure_png)


_lci_startup()
del _lci_startup
