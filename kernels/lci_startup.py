"""Runs inside every sandbox kernel at start (IPKernelApp.exec_files).

* the working directory is /mnt/data, where uploads are and where files to hand back go;
* a normal umask for the user's files (the launcher starts the kernel with 0 so that
  the host can reach the kernel's sockets);
* matplotlib draws inline (MPLBACKEND is set by the launcher) and a Figure passed to
  ``display()`` renders as PNG even when pyplot was never imported.
"""

import os


def _figure_png(fig):  # type: ignore[no-untyped-def]
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png")  # type: ignore[no-any-return]


def main() -> None:
    os.umask(0o022)
    workdir = os.environ.get("LCI_WORKDIR", "/mnt/data")
    if os.path.isdir(workdir):
        os.chdir(workdir)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - always present in a kernel
        return
    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    png.for_type_by_name("matplotlib.figure", "Figure", _figure_png)


main()
# This file runs in the user's namespace: leave nothing behind.
del main, _figure_png, os
