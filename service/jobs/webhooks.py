"""Webhooks: callback URL checks, HMAC-SHA256 signatures, delivery.

A callback URL must be http(s) and, unless ``SAGD_WEBHOOK_ALLOW_PRIVATE`` is set, every address its
host resolves to must be public (not private, loopback, link-local, multicast, reserved or
unspecified). The check runs when the job is submitted and again just before each delivery, so a
DNS answer that changes in between cannot redirect the hook to an internal service.

Signature header: ``X-SAGD-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
``HMAC-SHA256(secret, "<t>." + body)``.
Receivers recompute it over the raw body and reject old timestamps (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

SIGNATURE_HEADER = "X-SAGD-Signature"
MAX_URL_LENGTH = 2048


class WebhookTargetError(ValueError):
    """A callback URL that may not be called."""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_callback_url(url: str, *, allow_private: bool) -> str:
    """Validate ``url`` (scheme, host, resolved addresses); returns it unchanged."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookTargetError("callback_url is too long")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookTargetError("callback_url must be an http or https URL")
    host = parts.hostname
    if not host:
        raise WebhookTargetError("callback_url has no host")
    if parts.username or parts.password:
        raise WebhookTargetError("callback_url must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookTargetError("callback_url has an invalid port") from exc
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookTargetError(f"callback_url host {host!r} does not resolve") from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(_is_public(a) for a in addresses):
        raise WebhookTargetError(
            "callback_url resolves to a private or loopback address "
            "(allowed only with SAGD_WEBHOOK_ALLOW_PRIVATE=true)"
        )
    return url


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-SAGD-Signature`` value for ``body``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: float = 300.0) -> bool:
    """Check a signature header (what a receiver does; used by the tests)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        ts = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    expected = sign(secret, body, ts).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def deliver(
    url: str, body: bytes, *, secret: str, allow_private: bool, timeout_s: float = 5.0
) -> int:
    """POST ``body`` to ``url``; returns the status, raises on network errors or non-2xx."""
    check_callback_url(url, allow_private=allow_private)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        "User-Agent": "sagd-webhook/1",
    }
    response = httpx.post(
        url, content=body, headers=headers, timeout=timeout_s, follow_redirects=False
    )
    if not 200 <= response.status_code < 300:
        raise httpx.HTTPStatusError(
            f"webhook answered {response.status_code}", request=response.request, response=response
        )
    return response.status_code
