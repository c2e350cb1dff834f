"""`API_ALLOWED_HOSTS` and the `Host` header, both reduced to one comparable form.

A DNS-rebinding page reaches a local API under the attacker's own name (the browser sends
`Host: rebind.attacker.example` and, for its own page, a matching `Origin`), so only the Host
name tells it apart from a page of this API. Names compare case-insensitively and without a
trailing dot; IP addresses in their canonical form (`[0:0::1]` is `::1`); the port is not part
of the name.
"""

import ipaddress
import re

ANY_HOST = "*"
DEFAULT_ALLOWED_HOSTS = "127.0.0.1,localhost,::1"
# DNS labels; `_` too, as container and compose service names use it.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]*")
MAX_NAME_CHARS = 253


def _canonical(name: str) -> str | None:
    """An IP address's canonical text, a DNS name lower-cased without its final dot, or None."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    name = name.lower().removesuffix(".")
    if len(name) > MAX_NAME_CHARS or not _HOSTNAME.fullmatch(name):
        return None
    return name


def parse_allowed_hosts(value: str) -> frozenset[str] | None:
    """The names of a comma-separated list, or None for `*` (any host). ValueError with a
    one-line reason for an entry that is not a bare host name or IP address."""
    names: set[str] = set()
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        if entry == ANY_HOST:
            return None
        bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
        name = _canonical(bare)
        if name is None:
            shown = entry if len(entry) <= 60 else entry[:60] + "…"
            raise ValueError(
                f"{shown!r} is not a host name or IP address (list names without scheme, "
                "port or path, separated by commas; * for any host)"
            )
        names.add(name)
    if not names:
        raise ValueError("names no host (list names separated by commas; * for any host)")
    return frozenset(names)


def host_name(header: str) -> str | None:
    """The name in a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`) in the form
    `parse_allowed_hosts` gives, or None when the header is malformed."""
    header = header.strip()
    if header.startswith("["):
        name, bracket, port = header[1:].partition("]")
        if not bracket or not (port == "" or port.startswith(":")):
            return None
        return _with_port(name, port[1:], ipv6=True)
    if header.count(":") > 1:  # an IPv6 address without brackets: no port can follow
        return _with_port(header, "", ipv6=True)
    name, _, port = header.partition(":")
    return _with_port(name, port, ipv6=False)


def _with_port(name: str, port: str, *, ipv6: bool) -> str | None:
    if not _PORT.fullmatch(port):
        return None
    canonical = _canonical(name)
    if canonical is None or (ipv6 and ":" not in canonical):
        return None
    return canonical
