"""``modelctl``, the operators' command line: :func:`main` is its entry point.

- :mod:`.arguments`: argument types and the settings file (pure).
- :mod:`.registry_commands`, :mod:`.rollout_commands`: the commands, thin over the library.
- :mod:`.output`: tables and progress lines.
"""

from model_registry.cli.arguments import load_env_file
from model_registry.cli.main import LOCAL_ENV_FILE, build_parser, main

__all__ = ["LOCAL_ENV_FILE", "build_parser", "load_env_file", "main"]
