"""The query API's bearer token: created, shared, rotated and read, in one place.

The leader keeps the token in an application secret (created on first need) and shares the
secret's ID in the peer application data (:class:`peers.TokenShare`); every unit reads the
latest revision, so a rotation reaches every bridge and, through the leader, every Grafana.

The units of the owning application get no secret-changed for its own secret, so a new revision
reaches them as a peer relation-changed: the leader also shares a short digest of the token
(never the token), which changes with it.

The token itself is never logged and never written anywhere but the secret, the snap's
``query-auth-token`` key and Grafana's encrypted ``secureJsonData``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

import ops

from peers import Peers

logger = logging.getLogger(__name__)

LABEL = "query-auth-token"
CONTENT_KEY = "token"
DESCRIPTION = "Bearer token of the grafana-agent-bridge query API"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def fingerprint(token: str) -> str:
    """A short digest that changes with the token and says nothing usable about it."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def current(
    model: ops.Model, peers: Peers | None, *, enabled: bool, rotation: str, maintain: bool
) -> str | None:
    """The bearer token of the query API: ``""`` when off, None while not known yet.

    With ``maintain`` (the reconcile), the leader creates the secret when missing and applies
    the rotation policy; reading alone (status, actions) changes no secret.
    """
    if not enabled:
        return ""
    if model.unit.is_leader():
        secret = _leader_secret(model, peers, create=maintain)
        if secret is not None and maintain:
            _apply_rotation_policy(secret, rotation)
    else:
        secret = _shared_secret(model, peers)
    if secret is None:
        return None
    try:
        token = secret.get_content(refresh=True).get(CONTENT_KEY, "")
    except (ops.SecretNotFoundError, ops.ModelError) as e:
        logger.warning("cannot read the query token: %s", e)
        return None
    return token or None


def rotate(event: ops.SecretRotateEvent, *, leader: bool) -> None:
    """Juju's rotation schedule came due: a new revision with a new token (leader)."""
    if event.secret.label != LABEL or not leader:
        return
    event.secret.set_content({CONTENT_KEY: new_token()})
    logger.info("rotated the query token")


def _leader_secret(model: ops.Model, peers: Peers | None, *, create: bool) -> ops.Secret | None:
    try:
        secret = model.get_secret(label=LABEL)
    except ops.SecretNotFoundError:
        if not create:
            return None
        secret = model.app.add_secret(
            {CONTENT_KEY: new_token()}, label=LABEL, description=DESCRIPTION
        )
    if peers is not None:
        _share(peers, secret)
    return secret


def _share(peers: Peers, secret: ops.Secret) -> None:
    """Tell the peers where the token is and, by its digest, when it changed (leader)."""
    try:
        digest = fingerprint(secret.get_content(refresh=True).get(CONTENT_KEY, ""))
    except (ops.SecretNotFoundError, ops.ModelError):
        digest = None  # unknown now: the peers keep the digest they have
    peers.share_token(secret.id or secret.get_info().id, digest)


def _shared_secret(model: ops.Model, peers: Peers | None) -> ops.Secret | None:
    """The secret the leader shared (non-leader); None while there is none."""
    secret_id = peers.token_share().secret_id if peers is not None else None
    if secret_id is None:
        return None
    try:
        # By ID only: a non-leader may not relabel its application's own secret.
        return model.get_secret(id=secret_id)
    except (ops.SecretNotFoundError, ops.ModelError, ValueError) as e:
        logger.warning("cannot find the query token secret: %s", e)
        return None


def _apply_rotation_policy(secret: ops.Secret, policy: str) -> None:
    """Juju then sends secret-rotate on schedule; :func:`rotate` replaces the token."""
    try:
        current_policy = secret.get_info().rotation
        wanted = ops.SecretRotate(policy)
        if (current_policy or ops.SecretRotate.NEVER) != wanted:
            secret.set_info(rotate=wanted)
    except (ops.SecretNotFoundError, ops.ModelError) as e:
        logger.warning("cannot set the query token's rotation policy: %s", e)
