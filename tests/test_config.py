"""Tests of hotspotd.config: schema, TOML loading, environment, secrets, example file."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hotspotd.config import (
    SCHEMA,
    Config,
    ConfigError,
    check_production,
    load_config,
    render_example,
    validate_required,
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
EXAMPLE = CONFIG_DIR / "hotspotd.example.toml"
DEMO = CONFIG_DIR / "demo.toml"


def write(tmp_path: Path, text: str, name: str = "hotspotd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def secret_file(tmp_path: Path, name: str, content: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


def config_error(path: Path | None = None, **kwargs: object) -> str:
    """Load, expect a ConfigError, check it is one line and return its message."""
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


def production_ready() -> dict[str, dict[str, object]]:
    return {
        "daraja": {"consumer_key": "ck", "consumer_secret": "cs", "passkey": "pk"},
        "radius": {"secret": "rs", "mac_password": "mp"},
        "router": {"password": "rp"},
    }


# --- precedence ----------------------------------------------------------------------


def test_defaults_load_without_a_file() -> None:
    config = load_config(None, env={})
    assert config.source is None
    assert config.web.port == 8080
    assert config.daraja.shortcode == "174379"
    assert config.daraja.backend == "daraja"
    assert config.radius.clients == ("192.168.88.1",)
    assert config.settlement.query_backoff_seconds == (3.0, 5.0, 10.0, 20.0, 30.0)
    assert config.radius.require_message_authenticator is True  # BlastRADIUS


def test_every_default_is_already_in_its_converted_form() -> None:
    for option in SCHEMA:
        assert option.convert.check(option.default) == option.default, option.key


def test_file_values_override_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[radius]\nauth_port = 11812\nclients = ["10.0.0.1", "10.0.0.2"]\n'
                           "[daraja]\ntimeout_seconds = 3\n")
    config = load_config(path, env={})
    assert config.source == path
    assert config.radius.auth_port == 11812
    assert config.radius.clients == ("10.0.0.1", "10.0.0.2")
    assert config.daraja.timeout_seconds == 3.0
    assert isinstance(config.daraja.timeout_seconds, float)
    assert config.radius.acct_port == 1813


def test_environment_overrides_file_including_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, '[web]\nport = 9000\n[daraja]\nconsumer_secret = "from-file"\n')
    env = {"HOTSPOTD_WEB_PORT": "9100", "HOTSPOTD_DARAJA_CONSUMER_SECRET": "from-env",
           "PATH": "/usr/bin", "HOTSPOTD_CONFIG": "/etc/hotspotd/hotspotd.toml"}
    config = load_config(path, env=env)
    assert config.web.port == 9100
    assert config.daraja.consumer_secret == "from-env"


def test_overrides_win_over_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[web]\nport = 9000\n[radius]\nauth_port = 1000\n")
    config = load_config(path, env={"HOTSPOTD_WEB_PORT": "9100"},
                         overrides={"web": {"port": 0}, "radius": {"auth_port": None}})
    assert config.web.port == 0
    assert config.radius.auth_port == 1000  # None means "flag not given"


def test_overrides_are_checked() -> None:
    message = config_error(overrides={"radius": {"auth_port": 70000}})
    assert message == "overrides: [radius] auth_port: expected an integer 0-65535, got 70000"


# --- errors name file, section and key -----------------------------------------------


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[radiuss]\nsecret = 'x'\n")
    message = config_error(path)
    assert message.startswith(f"{path}: [radiuss]: unknown section")
    assert "did you mean 'radius'" in message


def test_unknown_key_names_file_section_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[radius]\nauth_prot = 1812\n")
    message = config_error(path)
    assert message == f"{path}: [radius] auth_prot: unknown key (did you mean 'auth_port'?)"


def test_key_outside_any_section(tmp_path: Path) -> None:
    assert "unknown section" in config_error(write(tmp_path, "port = 1\n"))


@pytest.mark.parametrize(("toml", "expected"), [
    ('auth_port = "abc"', "[radius] auth_port: expected an integer 0-65535, got 'abc'"),
    ("auth_port = 65536", "[radius] auth_port: expected an integer 0-65535, got 65536"),
    ("auth_port = true", "[radius] auth_port: expected an integer 0-65535, got True"),
    ("interim_interval_seconds = 0", "[radius] interim_interval_seconds: expected a positive"),
    ("clients = [\"a\", \"\"]", "[radius] clients: expected a list of non-empty strings"),
    ("require_message_authenticator = 1",
     "[radius] require_message_authenticator: expected true or false, got 1"),
])
def test_bad_values_in_file(tmp_path: Path, toml: str, expected: str) -> None:
    path = write(tmp_path, f"[radius]\n{toml}\n")
    assert config_error(path).startswith(f"{path}: {expected}")


def test_bad_enum(tmp_path: Path) -> None:
    path = write(tmp_path, '[daraja]\nbackend = "mpesa"\n')
    assert config_error(path) == (
        f"{path}: [daraja] backend: expected one of \"daraja\", \"simulator\", got 'mpesa'")


@pytest.mark.parametrize(("section", "name", "value"), [
    ("daraja", "base_url", "ftp://example.com"),
    ("daraja", "base_url", "https://"),
    ("web", "public_url", "example.com/callbacks"),
    ("daraja", "account_reference", "THIRTEEN-CHAR"),
    ("daraja", "shortcode", "17a379"),
    ("settlement", "query_backoff_seconds", []),
    ("settlement", "inline_query_delays", [1.0, -2.0]),
    ("router", "timeout_seconds", float("nan")),
])
def test_values_the_converters_refuse(section: str, name: str, value: object) -> None:
    assert f"[{section}] {name}: expected" in config_error(overrides={section: {name: value}})


def test_optional_url_may_be_empty_or_https() -> None:
    assert load_config(None, env={}).web.public_url == ""
    config = load_config(None, env={"HOTSPOTD_WEB_PUBLIC_URL": "https://hotspot.example.com"})
    assert config.web.public_url == "https://hotspot.example.com"


def test_bad_bool_from_environment_names_the_variable() -> None:
    message = config_error(env={"HOTSPOTD_ROUTER_USE_TLS": "maybe"})
    assert message == ("environment HOTSPOTD_ROUTER_USE_TLS: [router] use_tls: expected "
                       "true, false, yes, no, 1 or 0, got 'maybe'")


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("YES", True), ("1", True), ("false", False), ("no", False), ("0", False),
])
def test_bools_from_environment(text: str, expected: bool) -> None:
    config = load_config(None, env={"HOTSPOTD_RADIUS_REQUIRE_MESSAGE_AUTHENTICATOR": text})
    assert config.radius.require_message_authenticator is expected


def test_bad_int_from_environment() -> None:
    message = config_error(env={"HOTSPOTD_RADIUS_AUTH_PORT": "abc"})
    assert message == ("environment HOTSPOTD_RADIUS_AUTH_PORT: [radius] auth_port: "
                       "expected an integer 0-65535, got 'abc'")


def test_lists_from_environment_are_comma_separated() -> None:
    config = load_config(None, env={
        "HOTSPOTD_RADIUS_CLIENTS": " 10.0.0.1, 10.0.0.2 ,",
        "HOTSPOTD_SETTLEMENT_QUERY_BACKOFF_SECONDS": "1, 2.5,10",
        "HOTSPOTD_SETTLEMENT_INLINE_QUERY_DELAYS": "",
    })
    assert config.radius.clients == ("10.0.0.1", "10.0.0.2")
    assert config.settlement.query_backoff_seconds == (1.0, 2.5, 10.0)
    assert config.settlement.inline_query_delays == ()
    message = config_error(env={"HOTSPOTD_SETTLEMENT_QUERY_BACKOFF_SECONDS": "1,x"})
    assert "[settlement] query_backoff_seconds: expected a non-empty list" in message


def test_unknown_variable_for_a_known_section_is_an_error() -> None:
    message = config_error(env={"HOTSPOTD_RADIUS_AUTHPORT": "1812"})
    assert message == "environment HOTSPOTD_RADIUS_AUTHPORT: unknown option in [radius]"


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert config_error(path).startswith(f"{path}: cannot read config file")


def test_toml_syntax_error_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[web]\nport = 8080\nhost = "0.0.0.0\n')
    message = config_error(path)
    assert message.startswith(f"{path}: invalid TOML:")
    assert "line 3" in message


# --- secrets -------------------------------------------------------------------------


def test_secret_read_from_file_relative_to_the_config(tmp_path: Path) -> None:
    secret_file(tmp_path, "radius.secret", "s3cret\n")
    absolute = secret_file(tmp_path, "passkey", "pk-value\r\n")
    path = write(tmp_path, f'[radius]\nsecret_file = "radius.secret"\n'
                           f'[daraja]\npasskey_file = "{absolute}"\n')
    config = load_config(path, env={})
    assert config.radius.secret == "s3cret"
    assert config.daraja.passkey == "pk-value"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_secret_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    shared = secret_file(tmp_path, "radius.secret", "do-not-show", mode=mode)
    path = write(tmp_path, f'[radius]\nsecret_file = "{shared}"\n')
    message = config_error(path)
    assert message.startswith(f"{path}: [radius] secret_file: {shared} is accessible by group")
    assert f"(mode {mode:04o})" in message
    assert "do-not-show" not in message


def test_secret_file_from_environment(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "router.password", "rp\n")
    config = load_config(None, env={"HOTSPOTD_ROUTER_PASSWORD_FILE": str(path)})
    assert config.router.password == "rp"


@pytest.mark.parametrize(("content", "problem"), [("", "is empty"), (None, "cannot read")])
def test_unusable_secret_file(tmp_path: Path, content: str | None, problem: str) -> None:
    target = tmp_path / "secret"
    if content is not None:
        secret_file(tmp_path, "secret", content)
    path = write(tmp_path, f'[radius]\nmac_password_file = "{target}"\n')
    assert problem in config_error(path)


def test_secret_and_secret_file_together_are_refused(tmp_path: Path) -> None:
    secret_file(tmp_path, "s", "x")
    path = write(tmp_path, '[radius]\nsecret = "y"\nsecret_file = "s"\n')
    assert "set either secret or secret_file" in config_error(path)


def test_only_secrets_can_come_from_files(tmp_path: Path) -> None:
    path = write(tmp_path, '[web]\nhost_file = "x"\n')
    assert config_error(path).startswith(f"{path}: [web] host_file: unknown key")


def test_bad_secret_value_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "[radius]\nsecret = 1234567\n")
    message = config_error(path)
    assert "1234567" not in message
    assert "[radius] secret: expected a string" in message


def test_masked_hides_secrets_that_are_set() -> None:
    config = load_config(None, env={"HOTSPOTD_RADIUS_SECRET": "rs"})
    masked = config.masked()
    assert masked["radius"]["secret"] == "***"
    assert masked["radius"]["mac_password"] == ""
    assert masked["radius"]["auth_port"] == 1812
    assert "rs" not in repr(config.radius) and "'rs'" not in repr(config)
    assert set(masked) == {option.section for option in SCHEMA}


# --- the Config object ---------------------------------------------------------------


def test_config_is_frozen() -> None:
    config = load_config(None, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.web.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.nosuchsection  # noqa: B018


def test_replace_returns_a_checked_copy() -> None:
    config = load_config(None, env={})
    changed = config.replace("radius", secret="generated", auth_port=0)
    assert (changed.radius.secret, changed.radius.auth_port) == ("generated", 0)
    assert (config.radius.secret, config.radius.auth_port) == ("", 1812)
    assert changed.web == config.web
    with pytest.raises(ConfigError, match=r"replace\(\): \[radius\] auth_port"):
        config.replace("radius", auth_port=-1)
    with pytest.raises(ConfigError, match="unknown key"):
        config.replace("radius", sekret="x")


def test_from_values_fills_defaults() -> None:
    config = Config.from_values({"web": {"port": 0}})
    assert config.web.port == 0 and config.web.host == "0.0.0.0"
    assert config == load_config(None, env={}, overrides={"web": {"port": 0}})


# --- production checks ---------------------------------------------------------------


def test_check_production_names_the_missing_key() -> None:
    values = production_ready()
    del values["daraja"]["consumer_key"]
    config = load_config(None, env={}, overrides=values)
    with pytest.raises(ConfigError) as info:
        check_production(config)
    assert str(info.value) == (
        'configuration: [daraja] consumer_key is required when backend = "daraja"')


def test_check_production_passes_when_complete() -> None:
    check_production(load_config(None, env={}, overrides=production_ready()))


def test_till_payments_need_a_till_number() -> None:
    values = production_ready()
    values["daraja"]["transaction_type"] = "till"
    config = load_config(None, env={}, overrides=values)
    with pytest.raises(ConfigError, match=r"\[daraja\] till_number is required"):
        check_production(config)
    check_production(config.replace("daraja", till_number="123456"))


def test_simulator_backends_need_only_radius_secrets() -> None:
    config = load_config(DEMO, env={})
    with pytest.raises(ConfigError) as info:
        check_production(config)
    assert str(info.value) == (f"{DEMO}: [radius] secret is required; "
                               "[radius] mac_password is required")
    check_production(config.replace("radius", secret="a", mac_password="b"))


def test_validate_required() -> None:
    config = load_config(None, env={})
    validate_required(config, [("web", "host")])
    with pytest.raises(ConfigError, match=r"\[web\] callback_token is required for x"):
        validate_required(config, [("web", "callback_token")], " for x")


# --- committed files -----------------------------------------------------------------


def test_committed_example_equals_the_schema_rendering() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == render_example(), (
        "regenerate with: python -m hotspotd.config > config/hotspotd.example.toml")


def test_every_option_is_in_the_example() -> None:
    example = EXAMPLE.read_text(encoding="utf-8")
    tables = tomllib.loads(example)
    comments = " ".join(line[2:] for line in example.splitlines() if line.startswith("# "))
    for option in SCHEMA:
        assert option.help in comments, option.key
        if option.secret:
            assert option.name not in tables[option.section], option.key
            assert f"\n# {option.name} = " in example, option.key
            assert f"\n# {option.name}_file = " in example, option.key
            assert option.env_var in comments, option.key
        else:
            value = option.convert.check(tables[option.section][option.name])
            assert value == option.default, option.key


def test_example_loads_to_the_defaults() -> None:
    assert load_config(EXAMPLE, env={}) == Config.from_values(source=EXAMPLE)


def test_module_prints_the_example() -> None:
    env = {**os.environ, "PYTHONPATH": str(CONFIG_DIR.parent)}
    result = subprocess.run([sys.executable, "-m", "hotspotd.config"], capture_output=True,
                            text=True, check=True, env=env)
    assert result.stdout == render_example()


def test_demo_config_loads() -> None:
    config = load_config(DEMO, env={})
    assert config.daraja.backend == "simulator"
    assert config.router.backend == "simulator"
    assert config.daraja.shortcode == "174379"
    assert config.radius.clients == ("127.0.0.1",)
    assert (config.web.port, config.radius.auth_port, config.radius.acct_port) == (0, 0, 0)
    for host in (config.web.host, config.radius.host, config.router.host,
                 config.simulators.host):
        assert host == "127.0.0.1"
    assert all(not value for section, values in config.values().items()
               for name, value in values.items()
               if (section, name) in {(o.section, o.name) for o in SCHEMA if o.secret})


def test_inline_secret_in_a_shared_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, '[radius]\nsecret = "inline"\n')
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="hotspotd.config"):
        assert load_config(path, env={}).radius.secret == "inline"
    assert "[radius] secret" in caplog.text and "inline" not in caplog.text.replace(
        str(path), "")
    caplog.clear()
    path.chmod(0o600)
    load_config(path, env={})
    assert caplog.text == ""
