"""`pip install .` (a real wheel, not an editable install) gives a working `batch-gateway`.

The wheel once shipped without ``batch_gateway_local.emulator`` because pyproject listed packages by
hand; it now uses package discovery. This builds the wheel, installs it into a fresh venv (the
package registry supplies the dependencies, as for a user) and runs the command from there, from a
directory outside the repository so nothing can be imported from the source tree. One venv serves
both installs a user makes: the `client` extra first (checked for what it must not bring), then the
`local` extra on top.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# A copy of the working tree without build output, venvs or caches: an in-tree build reuses build/,
# which could hide a module the wheel lost behind a stale copy.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "*.egg-info", "__pycache__", ".*_cache", "demo-output", ".aws-sam", "bench"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "batch-gateway"
    shutil.copytree(PROJECT_ROOT, source, ignore=_NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)], out
    )
    assert built.returncode == 0, built.stderr
    return next(out.glob("batch_gateway-*.whl"))


@dataclass(frozen=True)
class ClientInstall:
    """What the client-only install showed, read before the `local` extra joins the same venv."""

    runtime_found: subprocess.CompletedProcess[str]
    submit_help: subprocess.CompletedProcess[str]
    local_up: subprocess.CompletedProcess[str]


# The Lambda runtime's and the offline stack's packages: none of them comes with the client install.
_NOT_FOR_THE_CLIENT = ("aws_lambda_powertools", "openai", "anthropic", "moto", "samtranslator")


def _pip_install(python: Path, requirement: str, cwd: Path) -> None:
    # --no-compile: the few modules a test imports compile on first import; the rest never would.
    done = _run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", requirement], cwd)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    venv.create(home / "venv", with_pip=True)
    return home / "venv" / "bin"


@pytest.fixture(scope="module")
def client_install(wheel: Path, venv_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> ClientInstall:
    """The wheel with its `client` extra only: what a user of the Python client installs."""
    cwd = tmp_path_factory.mktemp("client")
    _pip_install(venv_bin / "python", f"{wheel}[client]", cwd)
    code = (
        "import importlib.util, sys; from batch_gateway_client import GatewayBatchProcessor; "
        f"print([m for m in {_NOT_FOR_THE_CLIENT!r} if importlib.util.find_spec(m)])"
    )
    command = str(venv_bin / "batch-gateway")
    return ClientInstall(
        runtime_found=_run([str(venv_bin / "python"), "-c", code], cwd),
        submit_help=_run([command, "submit", "--help"], cwd),
        local_up=_run([command, "local", "up"], cwd),
    )


@pytest.fixture(scope="module")
def installed(
    wheel: Path, venv_bin: Path, client_install: ClientInstall, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The same venv with the `local` extra (moto, the SAM translator) added: one venv, two installs."""
    _pip_install(venv_bin / "python", f"{wheel}[local]", tmp_path_factory.mktemp("local"))
    return venv_bin


def test_the_wheel_holds_every_subpackage(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for root, source in (
        ("batch_gateway", PROJECT_ROOT / "layers" / "batch_gateway" / "batch_gateway"),
        ("batch_gateway_local", PROJECT_ROOT / "src" / "batch_gateway_local"),
        ("batch_gateway_client", PROJECT_ROOT / "src" / "batch_gateway_client"),
    ):
        for module in source.rglob("*.py"):
            assert f"{root}/{module.relative_to(source).as_posix()}" in names
    assert "batch_gateway/pricing.json" in names
    # The SAM application the offline stack deploys, bundled by setup.py.
    for name in ("template.yaml", "statemachine/batch_job.asl.json", "functions/intake/app.py"):
        assert f"batch_gateway_local/sam_app/{name}" in names


def test_the_installed_command_runs_a_job(installed: Path, tmp_path: Path) -> None:
    helped = _run([str(installed / "batch-gateway"), "--help"], tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "local" in helped.stdout
    items = tmp_path / "tiny.jsonl"
    items.write_text(
        "".join(json.dumps({"custom_id": f"t-{n}", "user_message": f"Say {n}."}) + "\n" for n in range(3))
    )
    ran = _run(
        [
            str(installed / "batch-gateway"),
            "local",
            "run",
            str(items),
            "--provider",
            "openai",
            "--model",
            "gpt-4o-mini",
            "--out",
            str(tmp_path / "out"),
        ],
        tmp_path,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    results = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ["t-0", "t-1", "t-2"]
    assert all(r["error"] is None for r in results)


def test_the_client_installs_and_imports_without_the_runtime_packages(client_install: ClientInstall) -> None:
    probed = client_install.runtime_found
    assert (probed.returncode, probed.stdout.strip()) == (0, "[]"), probed.stderr[-3000:]
    assert client_install.submit_help.returncode == 0, client_install.submit_help.stderr
    local = client_install.local_up
    assert local.returncode == 2
    assert "pip install 'batch-gateway[local]'" in local.stderr
    assert "Traceback" not in local.stderr
