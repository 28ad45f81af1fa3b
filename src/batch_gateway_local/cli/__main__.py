"""``python -m batch_gateway_local.cli``: the same as the ``batch-gateway`` command."""

import sys

from batch_gateway_local.cli.commands import main

sys.exit(main())
