"""Bundles the SAM application into the wheel, so an installed `batch-gateway local run` has it.

The offline stack deploys template.yaml with its functions/, statemachine/ and layer from a directory;
in a source checkout that is the repository, in an installed wheel it is
``batch_gateway_local/sam_app/`` which this build step fills. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What the offline stack reads of the application (template.yaml's CodeUri/ContentUri/DefinitionUri).
SAM_APP = ("template.yaml", "statemachine", "functions", "layers/batch_gateway")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


class BuildWithSamApp(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout, which has the application
        target = Path(self.build_lib) / "batch_gateway_local" / "sam_app"
        shutil.rmtree(target, ignore_errors=True)  # an in-tree build keeps build/: no stale files
        for name in SAM_APP:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=SKIP, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithSamApp})
