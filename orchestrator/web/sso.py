"""Single sign-on with OpenID Connect: the organisation's provider signs a person in, and they get a local
session exactly as a password sign-in gives.

Authlib does the protocol (discovery, the authorization-code flow with PKCE and a nonce, the ID token's
signature and claims); this module only decides who the person is here:

- their user name is the configured claim (``preferred_username`` by default), lower-cased;
- their roles come from the configured claim (``groups`` by default) through the ``oidc_roles`` mapping,
  and are written to their user row at every sign-in (a person whose groups map to no role is refused);
- a token from another issuer is refused twice over: the discovery document must name the configured
  issuer, and the ID token's ``iss`` must be it (Authlib checks that, with the signature, against the
  issuer's keys).

A user row made here has no password, so it can sign in only through the provider; a name that already
has a local password is refused rather than taken over. Authlib keeps the flow's state (state, nonce, PKCE
verifier) in a short-lived cookie of its own (``autoclerk_sso``, path ``/sign-in``), signed with a key
derived from the client secret.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import warnings

import structlog

import authlib.deprecate  # noqa: E402,F401 - it sets its own warnings filter when first imported: before ours

with warnings.catch_warnings():  # Authlib 1.9 announces on import that its httpx client moves to httpx2
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from monitoring import register_secret

from ..accounts import ROLES, SsoRefused
from ..errors import ConfigurationError
from ..settings import Settings
from .auth import SESSION_COOKIE, origin_of, service_of
from .signin import safe_next, set_cookie, sign_in_form

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

SSO_COOKIE = "autoclerk_sso"
FLOW_SECONDS = 600


def check_sso_settings(settings: Settings) -> None:
    """Refuse a role mapping that names an unknown role (before the service starts).

    Raises:
        ConfigurationError: one line naming the group and the role.
    """
    for group, roles in settings.oidc_roles.items():
        unknown = [role for role in roles if role not in ROLES]
        if unknown or not roles:
            raise ConfigurationError(f"setting oidc_roles: '{group}' maps to '{unknown[0] if unknown else ''}'; "
                                     f"expected roles among {', '.join(ROLES)}")


def sso_client(settings: Settings) -> Any:
    """Authlib's client for the configured provider (``None`` when single sign-on is not configured)."""
    if not settings.oidc_enabled:
        return None
    assert settings.oidc_issuer and settings.oidc_client_secret
    register_secret(settings.oidc_client_secret.get_secret_value())
    oauth = OAuth()
    oauth.register("sso", client_id=settings.oidc_client_id,
                   client_secret=settings.oidc_client_secret.get_secret_value(),
                   server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
                   client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256", "timeout": 15})
    return oauth.create_client("sso")


def flow_cookie_key(settings: Settings) -> str:
    """The key that signs the flow's cookie: derived from the client secret, so every process of the
    service agrees on it and no further secret is needed."""
    assert settings.oidc_client_secret is not None
    return hmac.new(settings.oidc_client_secret.get_secret_value().encode(), b"autoclerk sso flow cookie",
                    hashlib.sha256).hexdigest()


def roles_from(claims: dict[str, Any], settings: Settings) -> list[str]:
    """The Autoclerk roles the person's claim values map to (none when no value is mapped)."""
    values = claims.get(settings.oidc_roles_claim)
    found = [values] if isinstance(values, str) else list(values) if isinstance(values, (list, tuple)) else []
    return sorted({role for value in found for role in settings.oidc_roles.get(str(value), [])})


def _refuse(request: Request, message: str) -> Response:
    return sign_in_form(request, "/", errors={"sso": message}, status=401)


@router.get("/sign-in/sso")
async def sso_start(request: Request, next: str = "/") -> Response:
    client, settings = request.app.state.sso, service_of(request).settings
    if client is None:
        return RedirectResponse("/sign-in", status_code=303)
    try:
        metadata = await client.load_server_metadata()
    except Exception as exc:  # the provider is down or answers nonsense: say so, keep local sign-in
        log.warning("sso discovery failed", issuer=settings.oidc_issuer, error=type(exc).__name__)
        return _refuse(request, "Single sign-on is not available at the moment. Try again later, or sign in "
                                "with your user name and password.")
    if str(metadata.get("issuer", "")).rstrip("/") != str(settings.oidc_issuer).rstrip("/"):
        log.warning("sso issuer refused", configured=settings.oidc_issuer, discovered=metadata.get("issuer"))
        return _refuse(request, "Single sign-on is set up wrongly: the provider is not the one configured. "
                                "Tell your administrator.")
    request.session["next"] = safe_next(next)
    return await client.authorize_redirect(request, str(request.url_for("sso_callback")))  # type: ignore[no-any-return]


@router.get("/sign-in/sso/callback", name="sso_callback")
async def sso_callback(request: Request) -> Response:
    client, service = request.app.state.sso, service_of(request)
    settings = service.settings
    if client is None:
        return RedirectResponse("/sign-in", status_code=303)
    origin = origin_of(request)
    try:
        token = await client.authorize_access_token(
            request, claims_options={"iss": {"essential": True, "values": [settings.oidc_issuer]}})
        if "userinfo" not in token:  # no ID token, or no nonce: nothing says who this is
            raise OAuthError(error="no_id_token", description="the provider sent no ID token")
        claims = dict(token["userinfo"])
        if settings.oidc_roles_claim not in claims or settings.oidc_username_claim not in claims:
            extra = dict(await client.userinfo(token=token))
            if extra.get("sub") == claims.get("sub"):
                claims = {**extra, **claims}
    except Exception as exc:  # OAuthError, a bad signature or issuer (JoseError), the provider unreachable
        reason = getattr(exc, "error", None) or type(exc).__name__
        log.warning("sso sign-in refused", reason=reason, client=origin)
        await run_in_threadpool(service.ledger.audit.record, "single sign-on", "sign_in.failed", "user", "unknown",
                                origin=origin, detail={"via": "single sign-on", "reason": str(reason)})
        return _refuse(request, "Single sign-on did not work: the answer from the sign-on service could not "
                                "be trusted. Try again, or tell your administrator if it keeps happening.")
    username = str(claims.get(settings.oidc_username_claim, "")).strip().lower()
    roles = roles_from(claims, settings)
    try:
        user = await run_in_threadpool(service.accounts.sso_user, username, roles)
    except SsoRefused as exc:
        log.warning("sso sign-in refused", user=username, reason=exc.reason, client=origin)
        await run_in_threadpool(service.ledger.audit.record, username or "single sign-on", "sign_in.failed", "user",
                                username or "unknown", origin=origin,
                                detail={"via": "single sign-on", "issuer": claims.get("iss"), "reason": exc.reason})
        return _refuse(request, str(exc))
    await run_in_threadpool(service.ledger.audit.record, username, "sign_in", "user", username, origin=origin,
                            detail={"via": "single sign-on", "issuer": claims.get("iss"), "roles": roles})
    started = await run_in_threadpool(service.accounts.start_session, user, settings.session_hours)
    response = RedirectResponse(str(request.session.pop("next", "/")), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, started.session_id, max_age=int(settings.session_hours * 3600))
    return response
