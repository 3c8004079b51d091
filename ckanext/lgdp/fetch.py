"""Every request the platform itself makes to a server it is told about: a
file attached by URL, a pull connector's source, a webhook.

The address comes from a council or agency user, so the platform must not
become their way into its own network (Solr, PostgreSQL, Redis, the cloud's
metadata service). The rule, applied here and nowhere else:

- https:// only; http:// where ``ckanext.lgdp.fetch.allow_http`` is on;
- the host must resolve to public internet addresses only: loopback,
  private (RFC 1918, fc00::/7), link-local, shared (100.64.0.0/10),
  multicast, unspecified, reserved and the cloud metadata addresses are
  refused, also when written as an IPv4-mapped, 6to4 or NAT64 IPv6 address or
  in an odd numeric spelling (2130706433, 0x7f.1, 127.1);
- the deny list, and the allow list when there is one;
- the address is checked when the URL is given (`refusal`), again before
  connecting, and the socket's actual peer once connected (the connection
  goes to the address that was checked, so a name cannot change its answer
  in between); every redirect is followed here and checked the same way;
- limits on size, time and redirects.

A refused fetch raises `Refused` before any request goes to the refused
address (for the addresses themselves, before any connection); its message
names the host and why, for a council officer.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Mapping
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.exceptions import TimeoutError as SocketTimeout
from urllib3.util import connection as urllib3_connection

import ckan.plugins.toolkit as tk

from ckanext.lgdp import config

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# The instance metadata services of the clouds (AWS, GCP, Azure, OpenStack:
# 169.254.169.254; AWS over IPv6: fd00:ec2::254; Alibaba: 100.100.100.200).
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NAT64 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48"))
COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible IPv6
TEST_LOOPBACK = ipaddress.ip_address("127.0.0.1")
REDIRECTS = (301, 302, 303, 307, 308)
# Headers that may follow a redirect to another server; the caller's others
# (a connector's secret above all) are for the server it named.
PORTABLE_HEADERS = ("user-agent", "accept")
CHUNK = 1 << 16


class FetchError(Exception):
    """A fetch that could not be made or finished; `message` is for people."""

    code = "download-failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refused(FetchError):
    """The rule refused the fetch: no request went to the refused address."""

    code = "fetch-refused"


class TooLarge(FetchError):
    """Over the size limit; what was read is the caller's to throw away."""

    code = "too-large"


@dataclass(frozen=True)
class Answer:
    """What a server answered. `body` is empty when it was written to the
    caller's file, for an error status and for a POST."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes = b""


# ---------------------------------------------------------------- the rule


def _phrase(kind: str) -> str:
    return {
        "metadata": tk._("the cloud provider's metadata service"),
        "unspecified": tk._("an unspecified address"),
        "loopback": tk._("this server's own loopback address"),
        "link-local": tk._("a link-local address"),
        "shared": tk._("a carrier-grade NAT address"),
        "multicast": tk._("a multicast address"),
        "private": tk._("a private network address"),
        "reserved": tk._("a reserved address"),
    }[kind]


def _kind(ip: IP) -> str | None:
    """Why an address is not a public internet address, or None if it is."""
    if ip in METADATA:
        return "metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip in SHARED:
        return "shared"
    if ip.is_multicast:
        return "multicast"
    if any(ip in net for net in PRIVATE):
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def _embedded(ip: IP) -> tuple[ipaddress.IPv4Address | None, bool]:
    """The IPv4 address an IPv6 one carries, and whether the IPv6 address
    stands for that IPv4 host (mapped, compatible, NAT64: judged as it)
    rather than for a network of its own (6to4: judged as both)."""
    if ip.version != 6:
        return None, False
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, True
    if (ip in COMPATIBLE and int(ip) > 1) or any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), True
    if ip.sixtofour is not None:
        return ip.sixtofour, False
    return None, False


def _classify(ip: IP) -> str | None:
    inner, alias = _embedded(ip)
    if inner is not None:
        kind = _kind(inner)
        if kind or alias:
            return kind
    return _kind(ip)


def _entries(values: list[str]) -> tuple[set[str], list[Any]]:
    """Host names and networks of an allow or deny list."""
    names, networks = set(), []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            names.add(value.lower().rstrip("."))
    return names, networks


def _name_listed(host: str, names: set[str]) -> bool:
    host = host.rstrip(".")
    return host in names or any(n.startswith("*.") and host.endswith(n[1:]) for n in names)


def _literal(host: str) -> IP | None:
    """The address a host that is written as one stands for, odd spellings
    (2130706433, 0x7f.1, 127.1) included, as the C library reads them."""
    host = host[:-1] if host.endswith(".") else host  # as the connection will (urllib3)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _test_host(host: str, ip: IP | None = None) -> bool:
    """The test suite's council servers: exactly 127.0.0.1, and only when
    ckanext.lgdp.fetch.test_loopback is on."""
    return config.fetch_test_loopback() and host == "127.0.0.1" and ip in (None, TEST_LOOPBACK)


def _judge(host: str, ip: IP) -> None:
    """Refuse one address of `host` unless the rule allows it."""
    if _test_host(host, ip):
        return
    shown = {"host": host, "ip": str(ip)}
    kind = _classify(ip)
    if kind is not None:
        if _literal(host) is not None:
            message = tk._("The address {host} is {what}; the platform only fetches from public internet addresses.")
        else:
            message = tk._("The address {host} resolves to {what} ({ip}); the platform only fetches from public internet addresses.")
        raise Refused(message.format(what=_phrase(kind), **shown))
    _names, denied = _entries(config.fetch_deny_list())
    if any(ip in net for net in denied):
        raise Refused(tk._("The address {host} resolves to {ip}, which the platform is set never to fetch from.").format(**shown))
    allowed_names, allowed = _entries(config.fetch_allow_list())
    if (allowed_names or allowed) and not _name_listed(host, allowed_names) and not any(ip in net for net in allowed):
        raise Refused(tk._("The address {host} ({ip}) is not one of the servers the platform is set to fetch from; ask the platform team to add it.").format(**shown))


def _addresses(host: str, port: int) -> list[IP]:
    """Every address of `host`, each allowed by the rule (else Refused)."""
    denied_names, _networks = _entries(config.fetch_deny_list())
    if _name_listed(host, denied_names):
        raise Refused(tk._("The address {host} is one the platform is set never to fetch from.").format(host=host))
    literal = _literal(host)
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise FetchError(tk._("The address {host} could not be found: no server has that name.").format(host=host))
        found = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
    for ip in found:
        _judge(host, ip)
    return found


def _scheme_refused(host: str, scheme: str) -> Refused:
    return Refused(tk._("The address of {host} starts with {scheme}://; the platform only fetches https:// addresses.").format(
        host=host, scheme=scheme or "?"))


def _target(url: str) -> tuple[str, int]:
    """The host and port of a URL the rule allows (scheme and address)."""
    if not url.strip():
        raise Refused(tk._("Missing value"))
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host:
        raise Refused(tk._("{url} is not a web address the platform can fetch from.").format(url=url))
    if scheme not in ("http", "https"):
        raise _scheme_refused(host, scheme)
    port = port or (443 if scheme == "https" else 80)
    _addresses(host, port)  # a refused address comes first: https would not make it fetchable
    if scheme == "http" and not (config.fetch_allow_http() or _test_host(host)):
        raise _scheme_refused(host, scheme)
    return host, port


def refusal(url: str) -> str | None:
    """Why the platform would not fetch `url` (the message), or None: for the
    actions that take a URL to fetch later, so they refuse it at once."""
    try:
        _target(url)
    except FetchError as e:
        return e.message
    return None


# ---------------------------------------------------------------- the connection


def _connect(conn: HTTPConnection) -> socket.socket:
    """urllib3's _new_conn, pinned: connect only to an address the rule allows
    (resolved here, not again by the socket library), then check the peer the
    socket actually reached."""
    problem: Exception = NewConnectionError(conn, f"No address to connect to for {conn.host}")
    for ip in _addresses(conn.host, conn.port):
        try:
            sock = urllib3_connection.create_connection(
                (str(ip), conn.port), conn.timeout, source_address=conn.source_address,
                socket_options=conn.socket_options)
        except socket.timeout:
            problem = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})")
            continue
        except OSError as e:
            problem = NewConnectionError(conn, f"Failed to establish a new connection: {e}")
            continue
        try:
            _judge(conn.host, ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0]))
        except Refused:
            sock.close()
            raise
        return sock
    raise problem


class _HTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _HTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _session() -> requests.Session:
    """A session whose every connection is pinned, and which takes nothing
    from the environment (no proxy, no .netrc)."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", _Adapter())
    session.mount("https://", _Adapter())
    return session


# ---------------------------------------------------------------- a fetch


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or ""), parts.port


def _too_slow(host: str, seconds: float) -> FetchError:
    return FetchError(tk._("{host} gave no answer within {seconds:g} seconds.").format(host=host, seconds=seconds))


def _failure(host: str, error: requests.RequestException, seconds: float) -> FetchError:
    if isinstance(error, requests.exceptions.SSLError):
        return FetchError(tk._("The certificate of {host} could not be verified (TLS).").format(host=host))
    # a read that times out in the body comes as a ConnectionError around urllib3's timeout
    if isinstance(error, requests.Timeout) or (error.args and isinstance(error.args[0], SocketTimeout)):
        return _too_slow(host, seconds)
    return FetchError(tk._("The platform could not reach {host} ({error}).").format(host=host, error=type(error).__name__))


def _read(resp: requests.Response, host: str, max_bytes: int, deadline: float, seconds: float,
          into: BinaryIO | None) -> bytes:
    def too_large() -> TooLarge:
        return TooLarge(tk._("The file at {host} is larger than the limit of {mb} MB.").format(
            host=host, mb=max_bytes // 1048576))

    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large()
    size, chunks = 0, []
    for chunk in resp.iter_content(CHUNK):  # decoded: a compressed file counts at its full size
        size += len(chunk)
        if size > max_bytes:
            raise too_large()
        if time.monotonic() > deadline:
            raise _too_slow(host, seconds)
        if into is not None:
            into.write(chunk)
        else:
            chunks.append(chunk)
    return b"".join(chunks)


def _fetch(method: str, url: str, *, headers: Mapping[str, str] | None, data: bytes | None, timeout: float,
           max_bytes: int, into: BinaryIO | None, follow: bool) -> Answer:
    deadline = time.monotonic() + timeout
    sent = dict(headers or {})
    hops = 0
    came_from: str | None = None
    with _session() as session:
        while True:
            try:
                host, _port = _target(url)
            except FetchError as e:
                if came_from is None:
                    raise
                raise type(e)(tk._("{host} redirected the request to {target}. {reason}").format(
                    host=came_from, target=url, reason=e.message)) from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise _too_slow(host, timeout)
            try:
                resp = session.request(method, url, headers=sent, data=data, stream=True, allow_redirects=False,
                                       timeout=(min(config.fetch_connect_timeout_seconds(), left), left))
            except requests.RequestException as e:
                raise _failure(host, e, timeout) from None
            with resp:
                location = resp.headers.get("Location")
                if follow and resp.status_code in REDIRECTS and location:
                    hops += 1
                    limit = config.fetch_max_redirects()
                    if hops > limit:
                        raise Refused(tk._("{host} redirected the request more than {n} times; the platform follows at most {n} redirects.").format(
                            host=host, n=limit))
                    target = urljoin(url, location)
                    if _origin(target) != _origin(url):
                        sent = {k: v for k, v in sent.items() if k.lower() in PORTABLE_HEADERS}
                    came_from, url = host, target
                    continue
                if method != "GET" or resp.status_code >= 300:
                    return Answer(resp.status_code, url, resp.headers)
                try:
                    body = _read(resp, host, max_bytes, deadline, timeout, into)
                except requests.RequestException as e:
                    raise _failure(host, e, timeout) from None
                return Answer(resp.status_code, url, resp.headers, body)


def get(url: str, *, max_bytes: int, timeout: float, headers: Mapping[str, str] | None = None,
        into: BinaryIO | None = None) -> Answer:
    """GET a file, following checked redirects; the body goes to `into` when
    given (else into the answer). Raises FetchError (Refused, TooLarge)."""
    return _fetch("GET", url, headers=headers, data=None, timeout=timeout, max_bytes=max_bytes, into=into,
                  follow=True)


def post(url: str, body: bytes, *, timeout: float, headers: Mapping[str, str] | None = None) -> Answer:
    """POST a body (a webhook). A redirect is not followed: it is the answer."""
    return _fetch("POST", url, headers=headers, data=body, timeout=timeout, max_bytes=0, into=None, follow=False)
