"""Package layout for setuptools (the metadata is in pyproject.toml).

The sandbox's own files live at the top of the source tree, ``kernels/`` (code that runs
inside the sandbox) and ``images/`` (the image definition and the seccomp profile). A wheel
carries them inside the package, as ``interpreter/kernels`` and ``interpreter/images``,
so an installed lci builds and runs the same image as a checkout (``image.source_dir``).
pyproject.toml alone cannot map directories outside the package and still find the
package's own subpackages, hence this file.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["interpreter", "interpreter.*"]),
        "interpreter.kernels",
        "interpreter.images",
    ],
    package_dir={"interpreter.kernels": "kernels", "interpreter.images": "images"},
    package_data={
        "interpreter": ["py.typed", "server/ui/templates/*.html", "server/ui/static/*"],
        "interpreter.kernels": ["*.py"],
        "interpreter.images": ["Dockerfile", "requirements.txt", "seccomp.json", "*.py"],
    },
)
