"""Where the SAM application that the offline stack deploys lives.

The offline stack deploys template.yaml with the functions/, statemachine/ and layer directories it
names. In a source checkout that is the repository; in an installed wheel it is the copy that
setup.py bundles as ``batch_gateway_local/sam_app/`` (tests/integration/test_wheel_install.py).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # batch_gateway_local/
_CHECKOUT = _PACKAGE.parents[1]  # the repository: src/batch_gateway_local/../..
_BUNDLED = _PACKAGE / "sam_app"


def application_root() -> Path:
    """The checkout when running from one, else the wheel's bundled copy."""
    if (_CHECKOUT / "template.yaml").is_file() and (_CHECKOUT / "functions").is_dir():
        return _CHECKOUT
    if (_BUNDLED / "template.yaml").is_file():
        return _BUNDLED
    return _CHECKOUT  # neither: OfflineStack reports the missing template by its path


PROJECT_ROOT = application_root()
TEMPLATE = PROJECT_ROOT / "template.yaml"
