"""The one configuration schema of hotspotd: TOML file, environment, overrides.

Every option is defined once, in `SCHEMA`, with its default, converter and help. The
schema drives loading (`load_config`), the example file (`render_example`, also printed
by `python -m hotspotd.config`) and the production checks (`check_production`).

Precedence: defaults < TOML file < environment (`HOTSPOTD_<SECTION>_<NAME>`) < overrides
(what the CLI passes from its flags). Secrets may also come from a file readable only by
its owner: `<name>_file = "/path"` in the TOML, or `HOTSPOTD_<SECTION>_<NAME>_FILE`.
Every problem raises `ConfigError` with one line naming the file, section and key.
"""

from hotspotd.config.example import render_example
from hotspotd.config.loading import (
    SECTION_TYPES,
    Config,
    check_production,
    load_config,
    missing_required,
    validate_required,
)
from hotspotd.config.schema import (
    BOOL,
    ENV_PREFIX,
    MASK,
    NON_EMPTY_STR,
    NON_NEGATIVE_FLOAT,
    OPTIONS,
    PORT,
    POSITIVE_INT,
    SCHEMA,
    SECTIONS,
    STR,
    STR_LIST,
    ConfigError,
    Converter,
    Option,
    digits,
    enum,
    float_list,
    list_of,
    short_text,
    url,
)

__all__ = [
    "BOOL",
    "Config",
    "ConfigError",
    "Converter",
    "ENV_PREFIX",
    "MASK",
    "NON_EMPTY_STR",
    "NON_NEGATIVE_FLOAT",
    "OPTIONS",
    "Option",
    "PORT",
    "POSITIVE_INT",
    "SCHEMA",
    "SECTIONS",
    "SECTION_TYPES",
    "STR",
    "STR_LIST",
    "check_production",
    "digits",
    "enum",
    "float_list",
    "list_of",
    "load_config",
    "missing_required",
    "render_example",
    "short_text",
    "url",
    "validate_required",
]
