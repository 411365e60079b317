"""Ships the top-level conf/ (the one source of the configs) inside the wheel, as degradation/_conf/.

Everything else about the package is in pyproject.toml. A checkout reads conf/ in place (degradation/conf/__init__.py);
an installed wheel, where no conf/ sits beside the package, reads the copy this build step puts in it.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithConf(build_py):
    """build_py, plus conf/**/*.yaml copied into the built package."""

    def run(self) -> None:
        super().run()
        for source in sorted((ROOT / "conf").rglob("*.yaml")):
            target = Path(self.build_lib) / "degradation" / "_conf" / source.relative_to(ROOT / "conf")
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithConf})
