"""Log lines: one event per line, secrets and phone numbers masked, journald priorities."""

from __future__ import annotations

import io
import logging

import pytest

from hotspotd.config import load_config
from hotspotd.ops.logs import JournalFormatter, MaskingFilter, mask_phone_numbers


def make_logger(masking: MaskingFilter, *, journal: bool = False) -> tuple[logging.Logger,
                                                                         io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter(journal=journal))
    handler.addFilter(masking)
    logger = logging.getLogger(f"test.ops.logging.{id(stream)}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return logger, stream


@pytest.mark.parametrize(("text", "masked"), [
    ("pay 254712345678 now", "pay 2547*****678 now"),
    ("+254712345678", "+2547*****678"),
    ("0712345678,", "07*****678,"),
    ("254112345678", "2541*****678"),
    ("receipt QKX1A2B3C4 amount 2547", "receipt QKX1A2B3C4 amount 2547"),
    ("id 1254712345678999", "id 1254712345678999"),
])
def test_phone_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_phone_numbers(text) == masked


def test_secrets_phones_and_tracebacks_masked_on_one_line() -> None:
    masking = MaskingFilter(["s3cr3t-radius", "ab"])  # too short to mask: ignored
    logger, stream = make_logger(masking)
    logger.info("radius secret %s for %s", "s3cr3t-radius", "254708374149")
    try:
        raise ValueError("token s3cr3t-radius\nsecond line 0708374149")
    except ValueError:
        logger.exception("failed for %s", "254708374149")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "s3cr3t-radius" not in stream.getvalue()
    assert "254708374149" not in stream.getvalue() and "0708374149" not in stream.getvalue()
    assert "***" in lines[0] and "2547*****149" in lines[0]
    assert "Traceback" in lines[1] and " | " in lines[1] and "07*****149" in lines[1]


def test_journal_format_has_priority_and_no_timestamp() -> None:
    logger, stream = make_logger(MaskingFilter(), journal=True)
    logger.error("boom")
    logger.info("fine")
    assert stream.getvalue().splitlines() == ["<3>" + logger.name + ": boom",
                                              "<6>" + logger.name + ": fine"]


def test_configure_logging_masks_config_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    from hotspotd.commands.common import add_log_secrets, configure_logging

    config = load_config(None, env={}, overrides={"radius": {"secret": "radius-xyz-123"}})
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(config)
    try:
        logging.getLogger("hotspotd.test").warning("secret is radius-xyz-123")
        add_log_secrets(config.replace("router", password="router-pw-456"))
        logging.getLogger("hotspotd.test").warning("password router-pw-456")
        err = capsys.readouterr().err
    finally:  # leave no handler on capsys's stream, which closes after the test
        root.handlers[:], level = saved
        root.setLevel(level)
    assert "radius-xyz-123" not in err and "router-pw-456" not in err
    assert err.count("***") == 2
