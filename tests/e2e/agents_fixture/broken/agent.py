"""An app that fails to import: the server must list it as unavailable and serve the others."""

import this_module_does_not_exist  # noqa: F401
