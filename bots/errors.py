"""Errors of the bots, grouped by what the orchestrator must do with the transaction::

    BotError
    ├── BusinessException        the case itself is wrong: do not retry, hand it back to a person
    ├── ApplicationError         the system misbehaved: retry with backoff, then fail
    │   ├── StepTimeout          a step, navigation or the transaction budget ran out
    │   ├── TargetServerError    the target system answered 5xx
    │   ├── PageCrashed          the renderer crashed: discard the context
    │   ├── SessionExpired       the target system asked for a sign-in mid-transaction: sign in again
    │   └── BrowserGone          the browser disconnected: relaunch it
    └── BrowserNotFoundError     no Chromium to launch: a set-up problem, refused before any work starts

Unknown exceptions count as APPLICATION. The class decides the retry, never the message text.
"""

from __future__ import annotations


class BotError(Exception):
    """Base class of the errors a transaction can end with in a bot."""

    def __init__(self, message: str, *, step: str | None = None) -> None:
        self.step = step
        super().__init__(message)


class BusinessException(BotError):
    """The case cannot be done as it stands (the target system's validation, an ``assert`` or ``fail``).

    Args:
        message: the target system's message or the workflow's, shown to the caseworker.
        code: a short machine-readable code.
    """

    def __init__(self, message: str, *, code: str = "business_rule", step: str | None = None) -> None:
        self.code = code
        super().__init__(message, step=step)


class ApplicationError(BotError):
    """The target system or the browser misbehaved; another attempt may succeed."""


class StepTimeout(ApplicationError):
    """A step, a navigation or the whole transaction took longer than its timeout."""


class TargetServerError(ApplicationError):
    """The target system answered a page request with a server error (5xx).

    A page load that submits nothing is loaded again in place a few times before this reaches the
    orchestrator (``server_errors.py``); what it knows of the request decides whether that is safe.

    Args:
        url: the address that answered 5xx (``None``: unknown).
        method: the HTTP method of the request that began the navigation (a POST redirected to a GET is a POST).
        began_in: the path of the step the navigation began in.
        submitting: the navigation began in a submitting step, after ``before_effect``: it may have changed
            the target system, so it is never sent again in place.

    Example::

        TargetServerError("the target system answered 503", step="steps[3].click", url="http://cms/cases/CASE-000001",
                          method="GET", began_in="steps[3].click")
    """

    def __init__(self, message: str, *, step: str | None = None, url: str | None = None, method: str | None = None,
                 began_in: str | None = None, submitting: bool = False) -> None:
        self.url, self.method, self.began_in, self.submitting = url, method, began_in, submitting
        self.retried_in_place = False
        """Set once the page was loaded again in place and kept failing: the steps are not started again for it."""
        super().__init__(message, step=step)


class PageCrashed(ApplicationError):
    """The page's renderer crashed; its context is discarded."""


class SessionExpired(ApplicationError):
    """The target system showed its sign-in page during a transaction; the kept session is dropped."""


class BrowserGone(ApplicationError):
    """The browser process disconnected or was killed; it is relaunched for the next transaction."""


class BrowserNotFoundError(BotError):
    """No Chromium executable was found; set AUTOCLERK_CHROMIUM_PATH or install Debian's chromium.

    A set-up problem, neither BUSINESS nor APPLICATION: the worker, the service or the run refuses to start
    (``find_chromium`` runs before anything is queued or consumed), so it never spends a case's attempt.
    """
