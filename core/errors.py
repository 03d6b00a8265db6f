"""The errors GRM Studio raises on purpose. Each message says what was wrong and,
where there is one, what to do next. Fronts (CLI, web app) turn them into their
own error displays; nothing below them formats for a front."""


class GRMStudioError(Exception):
    """Base class of every error GRM Studio raises on purpose."""


class InputError(GRMStudioError):
    """The user's input cannot be judged as given (empty query, no responses...)."""


class PromptTooLongError(InputError):
    """The rendered prompt plus the generation budget exceeds the model's context."""

    def __init__(self, prompt_tokens: int, max_new_tokens: int, context_length: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.context_length = context_length
        super().__init__(
            f"the prompt is {prompt_tokens:,} tokens and {max_new_tokens:,} new tokens are "
            f"requested, but the model's context is {context_length:,} tokens; shorten the "
            f"query or responses, or lower max_new_tokens to at most "
            f"{max(context_length - prompt_tokens, 0):,}"
        )


class ResponsesFileError(InputError):
    """A responses file that cannot be read; the message names the line."""


class BackendError(GRMStudioError):
    """A model backend could not be loaded or failed to generate."""


class ServersDownError(BackendError):
    """Every server of the judge's fleet is out of rotation (`core.backends.openai_fleet`),
    for now: a request can be tried again once a cool-down is over."""


class JudgingStopped(GRMStudioError):
    """Judging ended at a stop request, between two generation steps (`core.progress.Watch`):
    nothing of the judgements in flight is kept; what was saved before stays saved."""


class ConfigError(GRMStudioError):
    """A setting has a value GRM Studio cannot use."""


class NotAllowedError(GRMStudioError):
    """The signed-in account's role does not allow this action (or nobody is signed in)."""


class BusyError(GRMStudioError):
    """Refused for now, not for good: as much of this work is running as may run at
    once (the read-only demo's judging limits); the same request can be tried again
    in a moment."""


class StoreUnavailableError(GRMStudioError):
    """The database cannot be reached (down, restarting, network); what was saved
    before is safe, and the same action can be tried again once it is back."""
