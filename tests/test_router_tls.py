"""RouterOS API over TLS (api-ssl): the gateway against the simulator serving TLS.

The router's certificate is self-signed (what `/certificate add ... sign` makes on a real
RouterOS); the appliance pins it with `tls_ca_file`, or refuses it when it verifies against
the system's authorities. A plain-text client on the TLS port gets nowhere either.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.radius_responder import Grant, RadiusResponder, make_router_simulator

from hotspotd.router.gateway import RouterGateway, RouterUnreachable
from hotspotd.simulators.mikrotik import MikrotikSimulator

API_USER = "hotspotd"
API_PASSWORD = "Tls-API-pw-9"
MAC = "AA:BB:CC:DD:EE:30"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A router certificate for 127.0.0.1, signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "router.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "router.crt", directory / "router.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def router(certificate: tuple[Path, Path]) -> Iterator[MikrotikSimulator]:
    responder = RadiusResponder(grants={MAC: Grant(password="tok-tls", session_timeout=900)})
    responder.start()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    sim = make_router_simulator(responder, api_user=API_USER, api_password=API_PASSWORD,
                                api_tls=context)
    sim.start()
    yield sim
    sim.stop()
    responder.stop()


def gateway(router: MikrotikSimulator, **options: object) -> RouterGateway:
    host, port = router.api_address
    return RouterGateway(host=host, port=port, user=API_USER, password=API_PASSWORD,
                         timeout=3, **options)  # type: ignore[arg-type]


def test_tls_gateway_with_the_pinned_certificate_logs_a_host_in(
        router: MikrotikSimulator, certificate: tuple[Path, Path]) -> None:
    pinned = gateway(router, use_tls=True, tls_ca_file=str(certificate[0]))
    try:
        assert pinned.identity()
        pinned.login_host(mac=MAC, ip="10.5.50.30", user=MAC, password="tok-tls")
        assert pinned.find_active(MAC) is not None
        assert [host["mac-address"] for host in router.active_hosts()] == [MAC]
    finally:
        pinned.close()


def test_tls_without_verification_still_encrypts(router: MikrotikSimulator) -> None:
    unverified = gateway(router, use_tls=True, tls_verify=False)
    try:
        assert unverified.identity()
    finally:
        unverified.close()


def test_unknown_certificate_and_plain_text_are_refused(router: MikrotikSimulator) -> None:
    for refused in (gateway(router, use_tls=True),  # system authorities: not trusted
                    gateway(router)):  # plain API words on the TLS port
        with pytest.raises(RouterUnreachable) as failure:
            refused.identity()
        assert API_PASSWORD not in str(failure.value)
        refused.close()
