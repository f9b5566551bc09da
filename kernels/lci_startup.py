"""Runs inside every sandbox kernel at start (IPKernelApp.exec_files).

* the working directory is /mnt/data, where uploads are and where files to hand back go,
  and modules there can be imported (the kernel itself started without it on sys.path);
* a normal umask for the user's files (the launcher starts the kernel with 0 so that
  the host can reach the kernel's sockets);
* matplotlib draws inline (MPLBACKEND is set by the launcher) and a Figure passed to
  ``display()`` renders as PNG even when pyplot was never imported;
* in a pooled sandbox, the modules named in LCI_PRELOAD (comma-separated) are imported
  now, so a first cell that imports them finds them in ``sys.modules``; with
  matplotlib, pyplot's backend is loaded and one figure is drawn off-screen (fonts,
  Agg, the PNG writer), so the first ``plt.show()`` is warm. No names are bound.

This file runs in the user's namespace, so it leaves exactly nothing behind.
"""


def _lci_startup() -> None:
    import os

    os.umask(0o022)
    workdir = os.environ.pop("LCI_WORKDIR", "/mnt/data")
    if os.path.isdir(workdir):
        os.chdir(workdir)

    def preload_modules(names: list[str]) -> None:
        import importlib

        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # a module the image lacks is simply not preloaded
                continue
        if "matplotlib" not in names:
            return
        try:
            import io

            import matplotlib.pyplot
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            matplotlib.pyplot._get_backend_mod()  # the inline backend, as the first plot would
            fig = Figure()  # the default size: the glyphs and paths a first plot draws
            FigureCanvasAgg(fig)
            fig.add_subplot().plot([1, 2, 3], [0, 1, 0.5], label="x")
            try:  # the inline backend's own way: a tight bounding box, then the PNG
                from IPython.core.pylabtools import print_figure

                print_figure(fig, "png", bbox_inches="tight")
            except ImportError:
                fig.savefig(io.BytesIO(), format="png")
        except Exception:  # pragma: no cover - a warm-up only
            return

    # before /mnt/data is on sys.path: a file there never stands in for a preloaded module
    preload = [m for m in os.environ.pop("LCI_PRELOAD", "").split(",") if m]
    if preload:
        preload_modules(preload)
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
