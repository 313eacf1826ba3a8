"""One exception hierarchy for Launchdeck.

Like httpx and dlt: errors are mapped at the boundary (provider HTTP, database drivers, subprocesses)
into these classes, and retry decisions are made on the class alone: a ``TransientError`` may succeed
if tried again later, a ``TerminalError`` will not and carries a message a person can act on.
"""

from __future__ import annotations


class LaunchdeckError(Exception):
    """Base of every error Launchdeck raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(LaunchdeckError):
    """A setting is missing or malformed; the message names the setting."""


class NotAvailableYet(LaunchdeckError):
    """A command whose capability has not been built yet."""


class InputError(LaunchdeckError):
    """Bad input from a user: a file, a flag, a request body. The message says what to fix."""


class TooLarge(InputError):
    """A request body or an upload's content is over a size limit (HTTP 413)."""


class NotFound(LaunchdeckError):
    """A named thing (app, deployment, secret, database) does not exist."""


class Conflict(LaunchdeckError):
    """The request conflicts with current state (name taken, non-empty target, ...)."""


class LockTimeout(LaunchdeckError):
    """Another deployment of the same app held its lock for longer than the lock timeout."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


class Cancelled(LaunchdeckError):
    """The operator cancelled the deployment."""


class StepTimeout(LaunchdeckError):
    """A pipeline step ran past its timeout."""


class VaultError(LaunchdeckError):
    """A secret could not be decrypted: wrong key, tampered ciphertext or a missing key."""


class AuthError(LaunchdeckError):
    """Missing, wrong or expired engine token."""


class Forbidden(LaunchdeckError):
    """The token is valid but its role may not do this."""


class TierLimitExceeded(LaunchdeckError):
    """A deploy or change would go over the limits of the owner's tier."""


class TransientError(LaunchdeckError):
    """May succeed when tried again: timeouts, 429, 5xx, Neon's 423.

    ``retry_after`` is the provider's own hint in seconds (``Retry-After``), honoured by the backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The engine's rate limit for a token was reached (HTTP 429); ``retry_after`` says when to retry."""


class TerminalError(LaunchdeckError):
    """Will fail again if retried; the step fails with this message."""


class ProviderError(TerminalError):
    """A provider answered with an error that retrying will not fix (4xx other than 429/423)."""

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status


class ProviderUnavailable(TransientError):
    """A provider timed out, rate-limited us or answered 5xx."""

    def __init__(
        self, provider: str, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{provider}: {message}", retry_after=retry_after)
        self.provider = provider
        self.status = status


class ProviderNotFound(ProviderError):
    """The provider says the named resource does not exist (HTTP 404)."""


class ProviderConflict(ProviderError):
    """The provider refused because of current state: a name taken, an operation in the way (HTTP 409)."""


class PlanLimitReached(TerminalError):
    """A provider plan's limit (databases, projects, Workers, custom hostnames) would be exceeded; the message
    names the limit, the plan and what lifts it. Raised before anything is created."""


class BuildFailed(TerminalError):
    """An app's install or build failed (or timed out) in the sandbox; the message ends with the log tail."""

    def __init__(self, message: str, *, log_path: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_path = log_path
        self.log_tail = log_tail
